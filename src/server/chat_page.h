// The chat page served at GET /: one self-contained HTML document whose script
// streams replies from POST /v1/chat/completions (the same API as any client).
#pragma once

#include <string_view>

namespace toy::server {

std::string_view chat_page_html();

}  // namespace toy::server
