# gradcConfig.cmake: the gradc package for CMake (installed by `make install`).
#
#   find_package(gradc 0.2 REQUIRED)
#   add_executable(app main.c)
#   gradc_add_model(app models/mlp.nn)                        # mlp.c, mlp.h
#   gradc_add_model(app models/mlp.nn NAME digits INFER_ONLY BATCH 1
#                   PARAMS weights.safetensors)              # digits.c, digits.h
#
# gradc_add_model(TARGET MODEL [NAME N] [BATCH N] [DTYPE f32|f64] [INFER_ONLY]
#                 [PARAMS FILE] [BUDGET BYTES] [FIT] [GRADC_TARGET T]
#                 [OPTIONS ...])
#   generates NAME.c and NAME.h at build time, in
#   ${CMAKE_CURRENT_BINARY_DIR}/gradc/TARGET/, with `gradc compile -MD`; adds
#   them to TARGET's sources, that directory to its include path, and the
#   runtime (gradc::runtime) to what it links.  The files are regenerated
#   when MODEL, the PARAMS file or gradc itself changes (DEPENDS, and the
#   depfile of -MD), without reconfiguring.  NAME defaults to the name of
#   the model's `model` statement (read when configuring; it is passed as
#   --name, so the files keep their names if the statement changes).  A
#   model over BUDGET fails the build with gradc's report.  FIT and
#   GRADC_TARGET pass `--fit` and `--target T` on; a gradc without them
#   fails the build with its usage message.  OPTIONS: any other gradc
#   compile flags.  Call it once per build of a model: several models, or
#   builds of one model under other NAMEs, may go into one TARGET.
#
# gradc::runtime: the runtime.  Natively, the host library of the install
# (lib/libgradc_rt.a: gradc_rt.c and the host helpers, safetensors and CSV);
# when cross-compiling (or with GRADC_RUNTIME_FROM_SOURCE ON), a static
# library `gradc_runtime` compiled from the installed sources by the
# project's own compiler and flags (gradc_rt.c alone when cross-compiling).
#
# Variables: GRADC_EXECUTABLE, GRADC_INCLUDE_DIR, GRADC_RUNTIME_SOURCES,
# GRADC_VERSION, GRADC_MK (the Make include).
get_filename_component(_gradc_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
set(GRADC_VERSION "${gradc_VERSION}")
set(GRADC_EXECUTABLE "${_gradc_prefix}/bin/gradc" CACHE FILEPATH "the gradc compiler (runs on the build host)")
set(GRADC_INCLUDE_DIR "${_gradc_prefix}/include/gradc")
set(GRADC_MK "${_gradc_prefix}/share/gradc/gradc.mk")
set(GRADC_RUNTIME_SOURCES "${_gradc_prefix}/share/gradc/runtime/gradc_rt.c")
option(GRADC_RUNTIME_FROM_SOURCE "compile the gradc runtime with this project's compiler" OFF)

if(NOT EXISTS "${GRADC_EXECUTABLE}")
  set(gradc_FOUND FALSE)
  set(gradc_NOT_FOUND_MESSAGE "gradc not found at ${GRADC_EXECUTABLE}")
  return()
endif()

# this file's policies, recorded by the functions below: CMP0116 NEW
# (Ninja reads the depfile's absolute paths) where CMake has it
cmake_policy(PUSH)
cmake_policy(VERSION 3.13...3.28)

if(NOT TARGET gradc::runtime)
  if(CMAKE_CROSSCOMPILING OR GRADC_RUNTIME_FROM_SOURCE)
    set(_gradc_src "${GRADC_RUNTIME_SOURCES}")
    if(NOT CMAKE_CROSSCOMPILING)
      file(GLOB _gradc_host "${_gradc_prefix}/share/gradc/runtime/host/*.c")
      list(APPEND _gradc_src ${_gradc_host})
    endif()
    add_library(gradc_runtime STATIC ${_gradc_src})
    target_include_directories(gradc_runtime PUBLIC "${GRADC_INCLUDE_DIR}")
    if(NOT MSVC)
      target_link_libraries(gradc_runtime PUBLIC m)
    endif()
    add_library(gradc::runtime ALIAS gradc_runtime)
  else()
    add_library(gradc::runtime STATIC IMPORTED)
    set_target_properties(gradc::runtime PROPERTIES
      IMPORTED_LOCATION "${_gradc_prefix}/lib/libgradc_rt.a"
      INTERFACE_INCLUDE_DIRECTORIES "${GRADC_INCLUDE_DIR}")
    if(NOT MSVC)
      set_property(TARGET gradc::runtime PROPERTY INTERFACE_LINK_LIBRARIES m)
    endif()
  endif()
endif()

# The name in the model's `model NAME` statement, else the file's stem.
function(_gradc_model_name model out)
  get_filename_component(stem "${model}" NAME_WE)
  set(name "${stem}")
  if(model MATCHES "\\.nn$" AND EXISTS "${model}")
    file(STRINGS "${model}" lines REGEX "^[ \t]*model[ \t]+[A-Za-z_][A-Za-z0-9_]*")
    if(lines)
      list(GET lines 0 line)
      string(REGEX REPLACE "^[ \t]*model[ \t]+([A-Za-z_][A-Za-z0-9_]*).*" "\\1" name "${line}")
    endif()
  endif()
  set(${out} "${name}" PARENT_SCOPE)
endfunction()

function(gradc_add_model target model)
  cmake_parse_arguments(G "INFER_ONLY;FIT" "NAME;BATCH;DTYPE;PARAMS;BUDGET;GRADC_TARGET"
    "OPTIONS" ${ARGN})
  if(G_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "gradc_add_model: unknown arguments: ${G_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT TARGET ${target})
    message(FATAL_ERROR "gradc_add_model: '${target}' is not a target")
  endif()
  get_filename_component(model "${model}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  if(G_NAME)
    set(name "${G_NAME}")
  else()
    _gradc_model_name("${model}" name)
  endif()
  set(dir "${CMAKE_CURRENT_BINARY_DIR}/gradc/${target}")
  set(args compile "${model}" -o "${dir}" --name "${name}" -MD)
  set(deps "${model}" "${GRADC_EXECUTABLE}")
  if(G_BATCH)
    list(APPEND args --batch "${G_BATCH}")
  endif()
  if(G_DTYPE)
    list(APPEND args --dtype "${G_DTYPE}")
  endif()
  if(G_INFER_ONLY)
    list(APPEND args --infer-only)
  endif()
  if(G_PARAMS)
    get_filename_component(params "${G_PARAMS}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND args --params "${params}")
    list(APPEND deps "${params}")
  endif()
  if(G_BUDGET)
    list(APPEND args --budget "${G_BUDGET}")
  endif()
  if(G_FIT)
    list(APPEND args --fit)
  endif()
  if(G_GRADC_TARGET)
    list(APPEND args --target "${G_GRADC_TARGET}")
  endif()
  list(APPEND args ${G_OPTIONS})
  set(depfile)
  if(NOT CMAKE_VERSION VERSION_LESS 3.20 OR CMAKE_GENERATOR MATCHES "Ninja")
    set(depfile DEPFILE "${dir}/${name}.d")
  endif()
  add_custom_command(
    OUTPUT "${dir}/${name}.c" "${dir}/${name}.h"
    COMMAND "${GRADC_EXECUTABLE}" ${args}
    DEPENDS ${deps}
    ${depfile}
    COMMENT "gradc: ${name}.c, ${name}.h from ${model}"
    VERBATIM)
  target_sources(${target} PRIVATE "${dir}/${name}.c" "${dir}/${name}.h")
  target_include_directories(${target} PUBLIC "${dir}")
  # the property, not target_link_libraries: that would clash with the
  # caller's choice of its plain or keyword signature
  set_property(TARGET ${target} APPEND PROPERTY LINK_LIBRARIES gradc::runtime)
  set_property(TARGET ${target} APPEND PROPERTY INTERFACE_LINK_LIBRARIES gradc::runtime)
endfunction()

cmake_policy(POP)
