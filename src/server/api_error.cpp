#include "server/api_error.h"

namespace toy::server {

nlohmann::json ApiError::body() const {
  nlohmann::json error = {
      {"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}};
  if (!param.empty()) error["param"] = param;
  if (!code.empty()) error["code"] = code;
  return {{"error", error}};
}

void bad_request(const std::string& message, const std::string& param) {
  throw ApiError(400, message, "invalid_request_error", param);
}

}  // namespace toy::server
