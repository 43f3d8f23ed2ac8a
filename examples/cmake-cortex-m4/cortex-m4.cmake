# cortex-m4.cmake: a CMake toolchain file for a Cortex-M4F (hard float,
# fpv4-sp-d16) with arm-none-eabi-gcc and picolibc, linked for QEMU's
# mps2-an386 board with semihosting (stdio and files through the host):
# flash (code and const data) in the 4 MiB SSRAM at 0, RAM in the 16 MiB
# PSRAM at 0x21000000 -- the flags of scripts/embedded.sh.
#
#   cmake -S examples/cmake-cortex-m4 -B build/m4 \
#         -DCMAKE_TOOLCHAIN_FILE=examples/cmake-cortex-m4/cortex-m4.cmake \
#         -DCMAKE_PREFIX_PATH=/usr/local
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
# the compiler checks link nothing (the link needs the flags below)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(CMAKE_C_FLAGS_INIT
  "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 --specs=picolibc.specs -ffunction-sections -fdata-sections")
set(CMAKE_EXE_LINKER_FLAGS_INIT
  "--oslib=semihost --crt0=semihost -Wl,--gc-sections -Wl,--defsym=__flash=0 -Wl,--defsym=__flash_size=4M -Wl,--defsym=__ram=0x21000000 -Wl,--defsym=__ram_size=16M -Wl,--defsym=__stack_size=32K")
set(CMAKE_EXECUTABLE_SUFFIX_C ".elf")

# libraries and headers from the target's sysroot; programs (gradc) from
# the build host
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
