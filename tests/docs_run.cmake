# Runs one docs program (tests/docs_blocks.cmake): it must exit 0 and, when EXPECTED names a
# file, print exactly that file's text on standard output.
execute_process(COMMAND ${PROGRAM} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} exited with ${status}\nstdout:\n${out}\nstderr:\n${err}")
endif()
if(EXPECTED)
  file(READ ${EXPECTED} expected)
  if(NOT out STREQUAL expected)
    message(FATAL_ERROR "${PROGRAM}: the output differs from the page's output block\n"
                        "--- expected:\n${expected}--- printed:\n${out}---")
  endif()
endif()
