// ApiError: a failed API call as OpenAI reports it — an HTTP status and the
// error object {"error": {"message", "type", "param", "code"}}. Handlers throw it
// for anything a client sent wrong; the HTTP layer turns it into the response.
#pragma once

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace toy::server {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string message, std::string type = "invalid_request_error",
           std::string param = "", std::string code = "")
      : std::runtime_error(message),
        status(status),
        message(std::move(message)),
        type(std::move(type)),
        param(std::move(param)),
        code(std::move(code)) {}

  int status;
  std::string message;
  std::string type;   // invalid_request_error, authentication_error, server_error, ...
  std::string param;  // the request field at fault, or empty
  std::string code;   // machine-readable, or empty

  // {"error": {...}} with null param / code when empty, as OpenAI sends them.
  nlohmann::json body() const;
};

// 400 naming the field at fault.
[[noreturn]] void bad_request(const std::string& message, const std::string& param = "");

}  // namespace toy::server
