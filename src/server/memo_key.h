// How a grammar's state writes its key for the mask's memo (grammar_memo.h): field by field, each
// scalar's bytes (never a whole struct's, whose padding would make equal states differ).
#pragma once

#include <string>
#include <type_traits>

namespace xtile::server {

template <class T>
requires std::is_integral_v<T> || std::is_enum_v<T> || std::is_pointer_v<T>
void put_key(std::string* key, T v) {
  key->append(reinterpret_cast<const char*>(&v), sizeof v);
}

}  // namespace xtile::server
