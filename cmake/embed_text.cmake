# cmake -DIN=file -DOUT=file.cpp -DNAME=fn -DNAMESPACE=ns -DHEADER=h -P embed_text.cmake
# Writes OUT: a C++ function NAMESPACE::NAME() returning IN's text as a std::string_view (a
# raw string literal, so the text needs no escaping; it must not contain the delimiter).
file(READ "${IN}" TEXT)
string(FIND "${TEXT}" ")xtile_embed\"" BAD)
if(NOT BAD EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw string delimiter )xtile_embed\"")
endif()
file(WRITE "${OUT}.tmp"
  "// Generated from ${IN} by cmake/embed_text.cmake; do not edit.\n"
  "#include \"${HEADER}\"\n\nnamespace ${NAMESPACE} {\n\n"
  "std::string_view ${NAME}() {\n  static constexpr std::string_view text = R\"xtile_embed(${TEXT})xtile_embed\";\n"
  "  return text;\n}\n\n}  // namespace ${NAMESPACE}\n")
file(RENAME "${OUT}.tmp" "${OUT}")
