# Reading Markdown line by line in CMake, for docs_blocks.cmake and readme_blocks.cmake.
#
# tapegrad_markdown_lines(<path> <out-var>): the file's lines as a CMake list. ';' and square
# brackets (which would split or join list elements) stand in as the placeholders @SEMI@, @LB@
# and @RB@ until a line is used.
function(tapegrad_markdown_lines path out)
  file(READ ${path} text)
  string(REPLACE ";" "@SEMI@" text "${text}")
  string(REPLACE "[" "@LB@" text "${text}")
  string(REPLACE "]" "@RB@" text "${text}")
  string(REPLACE "\n" ";" text "${text}")
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

# tapegrad_markdown_append_line(<var> <line>): appends the line, placeholders restored, and a
# newline to the string in <var>. (A function, not a macro: a macro would expand the line's
# escapes, such as the \n of a printf in a code block.)
function(tapegrad_markdown_append_line var line)
  string(REPLACE "@SEMI@" ";" line "${line}")
  string(REPLACE "@LB@" "[" line "${line}")
  string(REPLACE "@RB@" "]" line "${line}")
  set(${var} "${${var}}${line}\n" PARENT_SCOPE)
endfunction()
