#!/bin/bash
# t_generated_conv.sh: tests/t_generated.sh for the models with convolutions.
GENERATED_SET=conv exec bash "${ROOT:-$(pwd)}/tests/t_generated.sh"
