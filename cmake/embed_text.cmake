# Writes a C++ source defining `std::string_view NAMESPACE::FUNCTION()` that returns the text of
# INPUT, as a raw string literal (split into pieces that every compiler accepts).
# Usage: cmake -DINPUT=file -DOUTPUT=file.cpp -DHEADER=serve/web_page.h -DNAMESPACE=ns -DFUNCTION=name -P embed_text.cmake
file(READ "${INPUT}" text)
string(FIND "${text}" ")luminars_embed\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )luminars_embed\"")
endif()
string(LENGTH "${text}" length)
set(pieces "")
set(offset 0)
while(offset LESS length)
  string(SUBSTRING "${text}" ${offset} 8000 piece)
  string(APPEND pieces "    R\"luminars_embed(${piece})luminars_embed\"\n")
  math(EXPR offset "${offset} + 8000")
endwhile()
file(WRITE "${OUTPUT}.tmp" "// Generated from ${INPUT} by cmake/embed_text.cmake: do not edit.\n#include \"${HEADER}\"\n\n"
  "namespace ${NAMESPACE} {\n\nstd::string_view ${FUNCTION}() {\n  static constexpr char text[] =\n${pieces}  ;\n"
  "  return {text, sizeof(text) - 1};\n}\n\n}  // namespace ${NAMESPACE}\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
