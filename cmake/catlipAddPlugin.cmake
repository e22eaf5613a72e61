# catlip_add_plugin(NAME SOURCES src... [LIBS lib...] [OUTPUT_DIRECTORY dir])
#
# Builds the stage plugin catlip_NAME.so (a MODULE library, no "lib" prefix)
# the way catlip's own plugins are built: hidden visibility (only the
# descriptor symbol is exported), every symbol resolved at link time
# (-Wl,--no-undefined), linked to catlip::core. The target is named
# catlip_plugin_NAME. The .so goes to OUTPUT_DIRECTORY (default
# ${CMAKE_BINARY_DIR}/plugins): point CATLIP_PLUGIN_PATH there, or install it
# into CATLIP_PLUGIN_INSTALL_DIR / any directory on CATLIP_PLUGIN_PATH.
# Stage type names must start with "NAME." (see catlip/plugin.h).
function(catlip_add_plugin name)
  cmake_parse_arguments(P "" "OUTPUT_DIRECTORY" "SOURCES;LIBS" ${ARGN})
  if(NOT P_SOURCES)
    message(FATAL_ERROR "catlip_add_plugin(${name}): no SOURCES")
  endif()
  if(NOT P_OUTPUT_DIRECTORY)
    set(P_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/plugins)
  endif()
  add_library(catlip_plugin_${name} MODULE ${P_SOURCES})
  set_target_properties(catlip_plugin_${name} PROPERTIES
    OUTPUT_NAME catlip_${name} PREFIX ""
    LIBRARY_OUTPUT_DIRECTORY ${P_OUTPUT_DIRECTORY}
    CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  target_link_libraries(catlip_plugin_${name} PRIVATE catlip::core ${P_LIBS})
  target_link_options(catlip_plugin_${name} PRIVATE -Wl,--no-undefined)
endfunction()
