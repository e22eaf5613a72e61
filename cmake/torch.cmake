# Finds LibTorch: by default the one inside the project venv's pinned `torch`
# wheel (tools/requirements.txt; tools/setup.sh installs it into .venv/), so
# the C++ trainer and every Python baseline run the same kernels.
#
#   -DTorch_DIR=/path/to/libtorch/share/cmake/Torch   a LibTorch of your own
#   -DCATLIP_PYTHON=/path/to/python                   another venv's torch
#
# Sets CATLIP_TORCH_VERSION, CATLIP_TORCH_CUDA (ON when the LibTorch has
# libtorch_cuda), CATLIP_TORCH_NCCL (ON when it ships ProcessGroupNCCL) and
# GLOO_INCLUDE_DIR.
set(CATLIP_PYTHON "${CMAKE_SOURCE_DIR}/.venv/bin/python" CACHE FILEPATH
  "Python whose torch wheel provides LibTorch (unless Torch_DIR is set)")

if(NOT Torch_DIR AND NOT DEFINED ENV{Torch_DIR})
  if(NOT EXISTS "${CATLIP_PYTHON}")
    message(FATAL_ERROR
      "LibTorch not found: ${CATLIP_PYTHON} does not exist.\n"
      "Run `bash tools/setup.sh` (it creates .venv/ with the pinned torch from tools/requirements.txt), "
      "or pass -DTorch_DIR=<libtorch>/share/cmake/Torch, or -DCATLIP_WITH_TORCH=OFF.")
  endif()
  execute_process(
    COMMAND "${CATLIP_PYTHON}" -c
      "import torch; print(torch.utils.cmake_prefix_path); print(int(torch._C._GLIBCXX_USE_CXX11_ABI)); print(torch.__version__)"
    OUTPUT_VARIABLE _tv ERROR_VARIABLE _te RESULT_VARIABLE _tr OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT _tr EQUAL 0)
    message(FATAL_ERROR "${CATLIP_PYTHON} cannot import torch:\n${_te}\nRun `bash tools/setup.sh`.")
  endif()
  string(REPLACE "\n" ";" _tv "${_tv}")
  list(GET _tv 0 _prefix)
  list(GET _tv 1 _abi)
  list(GET _tv 2 _ver)
  if(NOT _abi EQUAL 1)
    message(FATAL_ERROR "torch ${_ver} at ${_prefix} uses the pre-C++11 libstdc++ ABI; catlip's other "
      "libraries (ICU, Boost, libcurl) use the C++11 ABI. Use a cxx11-ABI LibTorch.")
  endif()
  set(Torch_DIR "${_prefix}/Torch" CACHE PATH "LibTorch's CMake package (from ${CATLIP_PYTHON})")
  message(STATUS "LibTorch: torch ${_ver} from ${CATLIP_PYTHON}")
endif()

# The CUDA wheels' Caffe2 config looks for the CUDA toolkit (nvcc, cuDNN
# headers) to describe its targets. Nothing of catlip is compiled by nvcc:
# the CUDA code is plain C++ against ATen/c10 CUDA headers. A fixed arch list
# (A100, H100/H200) keeps it from probing for a GPU with a test program.
if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST} AND NOT TORCH_CUDA_ARCH_LIST)
  set(TORCH_CUDA_ARCH_LIST "8.0;9.0" CACHE STRING "CUDA archs named to LibTorch's CMake (no GPU probe)")
endif()
find_package(Torch REQUIRED)
set(CATLIP_TORCH_VERSION "${Torch_VERSION}")

set(CATLIP_TORCH_CUDA OFF)
if(TORCH_CUDA_LIBRARIES OR TARGET torch_cuda)
  set(CATLIP_TORCH_CUDA ON)
endif()
set(CATLIP_TORCH_NCCL OFF)
if(CATLIP_TORCH_CUDA AND EXISTS "${TORCH_INSTALL_PREFIX}/include/torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp")
  set(CATLIP_TORCH_NCCL ON)
endif()

# c10d's Gloo process group is compiled into libtorch_cpu, but the wheel
# ships no Gloo headers, and ProcessGroupGloo.hpp includes them. Debian's
# libgloo-dev provides them; only the headers are used (never libgloo.so,
# which would put a second Gloo beside the one inside libtorch_cpu): catlip
# holds Gloo objects only through pointers and calls only LibTorch.
find_path(GLOO_INCLUDE_DIR gloo/algorithm.h HINTS "${TORCH_INSTALL_PREFIX}/include")
if(NOT GLOO_INCLUDE_DIR)
  message(FATAL_ERROR "Gloo's headers (gloo/algorithm.h) not found: apt-get install libgloo-dev "
    "(headers only; c10d's ProcessGroupGloo needs them)")
endif()
# Installed binaries and plugins find LibTorch where it was built against
# (the venv's torch/lib): it is not in a system directory.
set(CATLIP_TORCH_LIBDIR "${TORCH_INSTALL_PREFIX}/lib")
list(APPEND CMAKE_INSTALL_RPATH "${CATLIP_TORCH_LIBDIR}")
message(STATUS "LibTorch ${CATLIP_TORCH_VERSION}: CUDA ${CATLIP_TORCH_CUDA}, NCCL ${CATLIP_TORCH_NCCL}")

# catlip_torch_pch(TARGET...): <torch/torch.h> precompiled once for the
# whole build (a TU that includes it costs 10-16 s and ~1 GB; with the PCH,
# ~2 s) in catlip_torch_pch and reused by every torch-facing target. Reuse
# needs identical code-generation flags, so they are all position-independent
# (as the plugins' static libraries must be anyway).
function(catlip_torch_pch)
  if(NOT TARGET catlip_torch_pch)
    add_library(catlip_torch_pch STATIC ${CMAKE_SOURCE_DIR}/cmake/torch_pch.cpp)
    target_link_libraries(catlip_torch_pch PUBLIC torch)
    set_target_properties(catlip_torch_pch PROPERTIES POSITION_INDEPENDENT_CODE ON)
    target_precompile_headers(catlip_torch_pch PRIVATE <torch/torch.h>)
  endif()
  foreach(t ${ARGN})
    get_target_property(_type ${t} TYPE)
    if(_type STREQUAL "EXECUTABLE")
      # -fPIC, not CMake's -fPIE for executables: the PCH was made with -fPIC
      # (PIC objects link into a PIE all the same).
      set_target_properties(${t} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
      target_compile_options(${t} PRIVATE -fPIC)
    else()
      set_target_properties(${t} PROPERTIES POSITION_INDEPENDENT_CODE ON)
    endif()
    target_precompile_headers(${t} REUSE_FROM catlip_torch_pch)
    target_compile_options(${t} PRIVATE -Winvalid-pch)
  endforeach()
endfunction()
