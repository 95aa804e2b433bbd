# The README's code blocks, as test_readme compiles them: every ```cpp block (and the output block
# the first one is said to print) carries a marker on the line before it,
#
#   <!-- readme-test: NAME -->
#
# and is written verbatim, with a #line directive pointing at README.md, to
# <build>/tests/readme/NAME.inc. tests/test_readme.cpp #includes each one inside a test case
# that provides what the block takes as given (a data loader, a model factory) and checks what
# it does; an output block is compared with what its program printed. A ```cpp block without a
# marker fails the test readme_unmarked_<line>. Read at configure time: editing the README
# re-runs CMake, and an .inc file is rewritten only when its block changed.
set(TAPEGRAD_README ${PROJECT_SOURCE_DIR}/README.md)
set(TAPEGRAD_README_OUT ${CMAKE_CURRENT_BINARY_DIR}/readme)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${TAPEGRAD_README})
include(${CMAKE_CURRENT_LIST_DIR}/markdown_lines.cmake)
tapegrad_markdown_lines(${TAPEGRAD_README} lines)
set(n 0)
set(in_block FALSE)
set(pending "")
foreach(line IN LISTS lines)
  math(EXPR n "${n} + 1")
  if(in_block)
    if(line MATCHES "^ *```$")
      set(in_block FALSE)
      if(block_name)
        file(WRITE ${TAPEGRAD_README_OUT}/${block_name}.inc.tmp "${block}")
        configure_file(${TAPEGRAD_README_OUT}/${block_name}.inc.tmp ${TAPEGRAD_README_OUT}/${block_name}.inc COPYONLY)
      elseif(block_lang MATCHES "^(cpp|c\\+\\+)$")
        message(WARNING "README.md:${start}: a ```cpp block without a readme-test marker (tests/readme_blocks.cmake)")
        add_test(NAME readme_unmarked_${start} COMMAND ${CMAKE_COMMAND} -E false)
      endif()
    else()
      tapegrad_markdown_append_line(block "${line}")
    endif()
  elseif(line MATCHES "^<!-- readme-test: ([a-z_]+) -->$")
    set(pending ${CMAKE_MATCH_1})
  elseif(line MATCHES "^ *```(.*)$")
    set(block_lang "${CMAKE_MATCH_1}")
    set(in_block TRUE)
    math(EXPR start "${n} + 1")
    set(block_name "${pending}")
    set(block "")
    # cpp blocks get a #line directive: compile errors point at the README
    if(block_name AND block_lang MATCHES "^(cpp|c\\+\\+)$")
      set(block "#line ${start} \"README.md\"\n")
    endif()
    set(pending "")
  elseif(NOT line STREQUAL "")
    set(pending "")
  endif()
endforeach()
