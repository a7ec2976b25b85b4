// The chat page served at GET / : src/server/chat_page.html, compiled into the binary as a
// string by the build (cmake/embed_text.cmake), so the server needs no files beside it.
#pragma once

#include <string_view>

namespace xtile::server {

std::string_view chat_page_html();

}  // namespace xtile::server
