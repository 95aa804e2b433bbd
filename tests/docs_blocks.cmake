# The C++ code blocks of docs/*.md, compiled and run by ctest, so the documentation cannot drift
# from the API. Every ```cpp block must carry a marker, an HTML comment (invisible when the
# Markdown is rendered) on the line just before it (blank lines between are allowed):
#
#   <!-- docs-test: program -->    a complete program: compiled (-O0), linked against tapegrad,
#                                  run by the test docs_<file>_<line>; it must exit 0.
#   <!-- docs-test: output -->     (before a ``` or ```text block) the exact standard output of
#                                  the program block above it in the same file.
#   <!-- docs-test: fragment -->   a piece shown for reading, not compiled alone (a signature, a
#                                  part of a program given whole elsewhere on the page).
#
# A ```cpp block without a marker becomes a failing test, docs_unmarked_<file>_<line>. Each
# program's source is written to <build>/tests/docs/ with #line directives, so a compile error
# points at the Markdown file and line.

include(${CMAKE_CURRENT_LIST_DIR}/markdown_lines.cmake)
set(TAPEGRAD_DOCS_DIR ${PROJECT_SOURCE_DIR}/docs)
set(TAPEGRAD_DOCS_OUT ${CMAKE_CURRENT_BINARY_DIR}/docs)
file(GLOB TAPEGRAD_DOCS_PAGES CONFIGURE_DEPENDS ${TAPEGRAD_DOCS_DIR}/*.md)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${TAPEGRAD_DOCS_PAGES})

# One program block: its source file, executable and test; `line` is the block's first line.
function(tapegrad_docs_program page stem line content)
  set(name docs_${stem}_${line})
  set(src ${TAPEGRAD_DOCS_OUT}/${name}.cpp)
  file(WRITE ${src}.tmp "#line ${line} \"docs/${page}\"\n${content}")
  configure_file(${src}.tmp ${src} COPYONLY)  # rewritten only when it changed: no rebuild otherwise
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE tapegrad)
  target_compile_options(${name} PRIVATE -O0)
  tapegrad_warnings(${name})
  set(TAPEGRAD_DOCS_LAST_PROGRAM ${name} PARENT_SCOPE)
endfunction()

function(tapegrad_docs_test expected)
  add_test(NAME ${TAPEGRAD_DOCS_LAST_PROGRAM}
           COMMAND ${CMAKE_COMMAND} -DPROGRAM=$<TARGET_FILE:${TAPEGRAD_DOCS_LAST_PROGRAM}> -DEXPECTED=${expected}
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/docs_run.cmake)
  set_tests_properties(${TAPEGRAD_DOCS_LAST_PROGRAM} PROPERTIES TIMEOUT 120)
endfunction()

# A block ends: what to do with it, by its marker.
macro(tapegrad_docs_block_end)
  if(kind STREQUAL "program")
    if(TAPEGRAD_DOCS_LAST_PROGRAM AND NOT last_has_test)
      tapegrad_docs_test("")
    endif()
    tapegrad_docs_program(${page} ${stem} ${start} "${block}")
    set(last_has_test FALSE)
  elseif(kind STREQUAL "output")
    if(NOT TAPEGRAD_DOCS_LAST_PROGRAM OR last_has_test)
      message(WARNING "docs/${page}:${start}: an output block without a program block before it")
      add_test(NAME docs_orphan_output_${stem}_${start} COMMAND ${CMAKE_COMMAND} -E false)
    else()
      set(expected ${TAPEGRAD_DOCS_OUT}/${TAPEGRAD_DOCS_LAST_PROGRAM}.expected)
      file(WRITE ${expected} "${block}")
      tapegrad_docs_test(${expected})
      set(last_has_test TRUE)
    endif()
  elseif(kind STREQUAL "unmarked")
    message(WARNING "docs/${page}:${start}: a ```cpp block without a docs-test marker (tests/docs_blocks.cmake)")
    add_test(NAME docs_unmarked_${stem}_${start} COMMAND ${CMAKE_COMMAND} -E false)
  endif()
endmacro()

foreach(page_path ${TAPEGRAD_DOCS_PAGES})
  get_filename_component(page ${page_path} NAME)
  get_filename_component(stem ${page_path} NAME_WE)
  string(MAKE_C_IDENTIFIER ${stem} stem)
  tapegrad_markdown_lines(${page_path} lines)
  set(n 0)
  set(in_block FALSE)
  set(pending "")
  set(TAPEGRAD_DOCS_LAST_PROGRAM "")
  set(last_has_test TRUE)
  foreach(line IN LISTS lines)
    math(EXPR n "${n} + 1")
    if(in_block)
      if(line MATCHES "^ *```$")
        tapegrad_docs_block_end()
        set(in_block FALSE)
      else()
        tapegrad_markdown_append_line(block "${line}")
      endif()
    elseif(line MATCHES "^<!-- docs-test: (program|output|fragment) -->$")
      set(pending ${CMAKE_MATCH_1})
    elseif(line MATCHES "^ *```(.*)$")
      set(lang "${CMAKE_MATCH_1}")
      set(in_block TRUE)
      set(block "")
      math(EXPR start "${n} + 1")
      if(lang MATCHES "^(cpp|c\\+\\+)$")
        if(pending STREQUAL "program" OR pending STREQUAL "fragment")
          set(kind ${pending})
        else()
          set(kind unmarked)
        endif()
      elseif(pending STREQUAL "output")
        set(kind output)
      else()
        set(kind other)
      endif()
      set(pending "")
    elseif(NOT line STREQUAL "")
      set(pending "")
    endif()
  endforeach()
  if(TAPEGRAD_DOCS_LAST_PROGRAM AND NOT last_has_test)
    tapegrad_docs_test("")
  endif()
endforeach()
