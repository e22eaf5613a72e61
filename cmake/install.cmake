# Install rules (included last by the top-level CMakeLists.txt, once every
# target exists): the programs, the shipped plugins, the runtime configs and
# the plugin SDK (libcatlip_core's own rules are in core/CMakeLists.txt).
include(CMakePackageConfigHelpers)

set(_programs catlip catlip-worker catlip-bench)
if(TARGET catlip-torch)
  list(APPEND _programs catlip-torch)
endif()
install(TARGETS ${_programs} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

get_property(_plugins GLOBAL PROPERTY CATLIP_PLUGINS)
if(_plugins)
  install(TARGETS ${_plugins} LIBRARY DESTINATION ${CATLIP_INSTALL_PLUGINDIR})
endif()
# The exec plugin finds its Python helper in <plugin dir>/python.
if(TARGET catlip_plugin_exec AND EXISTS ${CMAKE_SOURCE_DIR}/tools/python/catlip_stage.py)
  install(FILES ${CMAKE_SOURCE_DIR}/tools/python/catlip_stage.py DESTINATION ${CATLIP_INSTALL_PLUGINDIR}/python)
endif()

# Graphs the CLI and users start from (`catlip quickstart --configs DIR`).
install(DIRECTORY ${CMAKE_SOURCE_DIR}/configs/ DESTINATION ${CMAKE_INSTALL_DATADIR}/catlip/configs)

# CMake package: find_package(catlip) -> catlip::core, catlip_add_plugin().
install(EXPORT catlipTargets NAMESPACE catlip:: DESTINATION ${CATLIP_INSTALL_CMAKEDIR})
set(CATLIP_CXX_ABI_NOTE "${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION}")
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/catlipConfig.cmake.in
  ${CMAKE_BINARY_DIR}/cmake/catlipConfig.cmake
  INSTALL_DESTINATION ${CATLIP_INSTALL_CMAKEDIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR CATLIP_INSTALL_PLUGINDIR)
# The SDK is compatible within one plugin ABI, i.e. one soname: same major.
write_basic_package_version_file(${CMAKE_BINARY_DIR}/cmake/catlipConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES
  ${CMAKE_BINARY_DIR}/cmake/catlipConfig.cmake
  ${CMAKE_BINARY_DIR}/cmake/catlipConfigVersion.cmake
  ${CMAKE_CURRENT_LIST_DIR}/catlipAddPlugin.cmake
  DESTINATION ${CATLIP_INSTALL_CMAKEDIR})

# pkg-config: relocatable (${pcfiledir}), like the rest of the prefix.
file(RELATIVE_PATH CATLIP_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
string(REGEX REPLACE "/$" "" CATLIP_PC_TO_PREFIX "${CATLIP_PC_TO_PREFIX}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/catlip.pc.in ${CMAKE_BINARY_DIR}/cmake/catlip.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/cmake/catlip.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
