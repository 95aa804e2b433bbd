# Project warning flags, applied PRIVATE to each of our own targets only.
function(tapegrad_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow)
  if(TAPEGRAD_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
