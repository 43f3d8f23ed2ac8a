/* ew_formula.h: the per-element formula of every elementwise op, written
 * once and included by ir.c twice: apply_ew (double: constant folding and
 * the reference evaluator) and apply_ew_f (float: the float-fallback layers
 * of the int8 evaluator, quant_eval.c, which must give the bits of the
 * generated int8 code).  The orders of operations, and the NaN and -0
 * cases of the comparisons, are the generated code's: the formula table F
 * of emit/group.lua, which int8.lua prints too.
 *
 * Before including: EW_NAME, EW_T (the type), EW_EXP, EW_TANH, EW_LOG,
 * EW_SQRT (its math functions).  x, y the operands -- (x) for K_UNARY,
 * (a, b) for K_BINARY, (dy, saved) for K_GRAD --, c = Node.attr (double:
 * a constant is rounded to EW_T first, as the generated literal is).
 * Exhaustive: a new elementwise row of ops.def is listed by -Wswitch until
 * it is here.  No include guard: meant to be included more than once.
 */
EW_T EW_NAME(Op op, EW_T x, EW_T y, const double c[2])
{
	const EW_T c0 = (EW_T)c[0], c1 = (EW_T)c[1];
	switch (op) {
	case OP_ADD: return x + y;
	case OP_SUB: return x - y;
	case OP_MUL: return x * y;
	case OP_DIV: return x / y;
	case OP_NEG: return -x;
	case OP_SCALE: return c0 * x;
	case OP_RELU: return x < 0 ? 0 : x;  /* NaN stays NaN, as in PyTorch */
	case OP_LEAKY_RELU: return x < 0 ? c0 * x : x;
	case OP_CLIP: return x < c0 ? c0 : x > c1 ? c1 : x;  /* NaN stays NaN */
	case OP_SIGMOID: return 1 / (1 + EW_EXP(-x));
	case OP_TANH: return EW_TANH(x);
	case OP_EXP: return EW_EXP(x);
	case OP_LOG: return EW_LOG(x);
	case OP_SQRT: return EW_SQRT(x);
	case OP_ABS: return x < 0 ? -x : x;
	case OP_EXPAND: return x;
	/* backward rules: x = dy, y = the saved forward value */
	case OP_RELU_GRAD: return y > 0 ? x : 0;
	case OP_LEAKY_RELU_GRAD: return y > 0 ? x : c0 * x;
	case OP_CLIP_GRAD: return y >= c0 && y <= c1 ? x : 0;  /* as torch.clamp */
	case OP_SIGMOID_GRAD: return x * y * (1 - y);
	case OP_TANH_GRAD: return x * (1 - y * y);
	case OP_SQRT_GRAD: return x / (2 * y);
	case OP_ABS_GRAD: return y > 0 ? x : y < 0 ? -x : 0;
	case OP_INPUT: case OP_PARAM: case OP_CONST: case OP_FILL:
	case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_SUM: case OP_MEAN: case OP_SUMSQ:
	case OP_MATMUL: case OP_TRANSPOSE: case OP_CROSS_ENTROPY: case OP_MSE:
	case OP_REDUCE_TO: case OP_BATCH_MEAN: case OP_SOFTMAX_GRAD: case OP_LOG_SOFTMAX_GRAD:
	case OP_CE_GRAD: case OP_MSE_GRAD: case OP_SGD_STEP: case OP_ADAM_STEP:
	case OP_CONV2D: case OP_MAXPOOL2D: case OP_AVGPOOL2D: case OP_RESHAPE: case OP_CONCAT:
	case OP_SLICE: case OP_CONV2D_DX: case OP_CONV2D_DW: case OP_MAXPOOL2D_GRAD:
	case OP_AVGPOOL2D_GRAD: case N_OP:
		break;  /* no per-element formula (mse_grad: eval.c's loss kernels) */
	}
	die("apply_ew: %s", op < N_OP ? op_name[op] : "?");
}
