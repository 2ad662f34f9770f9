// Request parsing and validation: every mistake is a 400 naming the field; the
// accepted shapes of OpenAI's chat and completions bodies.
#include <gtest/gtest.h>

#include <string>

#include "server/api_error.h"
#include "server/http_server.h"
#include "server/request.h"

namespace toy::server {
namespace {

using nlohmann::json;

// The ApiError a body raises (status 0 when it parses).
ApiError chat_error(const std::string& body) {
  try {
    parse_chat_request(parse_json_object(body));
  } catch (const ApiError& e) {
    return e;
  }
  return ApiError(0, "");
}

ApiError completion_error(const std::string& body) {
  try {
    parse_completion_request(parse_json_object(body));
  } catch (const ApiError& e) {
    return e;
  }
  return ApiError(0, "");
}

const char* kHi = R"("messages": [{"role": "user", "content": "hi"}])";

TEST(Request, ChatWithDefaults) {
  const CompletionRequest r = parse_chat_request(parse_json_object(
      R"({"model": "m", "messages": [{"role": "system", "content": "be brief"},
          {"role": "user", "content": [{"type": "text", "text": "hel"}, {"type": "text", "text": "lo"}]},
          {"role": "assistant", "content": null}, {"role": "developer", "content": "x"}]})"));
  EXPECT_TRUE(r.chat);
  EXPECT_EQ(r.model, "m");
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[1].content, "hello");
  EXPECT_EQ(r.messages[2].content, "");
  EXPECT_EQ(r.messages[3].role, "system");
  EXPECT_FALSE(r.stream);
  EXPECT_EQ(r.params.sampler.temperature, 1.0f);  // OpenAI's default
  EXPECT_EQ(r.params.sampler.top_p, 1.0f);
  EXPECT_EQ(r.params.max_tokens, -1);
  EXPECT_EQ(r.params.top_logprobs, -1);
}

TEST(Request, ChatSamplingFields) {
  const CompletionRequest r = parse_chat_request(parse_json_object(
      std::string("{") + kHi +
      R"(, "temperature": 0.5, "top_p": 0.9, "seed": 42, "max_completion_tokens": 7,
          "stop": ["a", "", "b"], "presence_penalty": 1, "frequency_penalty": -0.5,
          "logprobs": true, "top_logprobs": 3, "logit_bias": {"2": -100, "17": 5.5},
          "stream": true, "stream_options": {"include_usage": true}, "n": 1, "user": "u",
          "unknown_field": 1})"));
  EXPECT_FLOAT_EQ(r.params.sampler.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.params.sampler.top_p, 0.9f);
  EXPECT_TRUE(r.params.seeded);
  EXPECT_EQ(r.params.sampler.seed, 42u);
  EXPECT_EQ(r.params.max_tokens, 7);
  EXPECT_EQ(r.params.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_FLOAT_EQ(r.params.presence_penalty, 1.0f);
  EXPECT_FLOAT_EQ(r.params.frequency_penalty, -0.5f);
  EXPECT_EQ(r.params.top_logprobs, 3);
  ASSERT_EQ(r.params.logit_bias.size(), 2u);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
}

TEST(Request, TopPZeroIsGreedy) {
  const CompletionRequest r =
      parse_chat_request(parse_json_object(std::string("{") + kHi + R"(, "top_p": 0})"));
  EXPECT_EQ(r.params.sampler.temperature, 0.0f);
}

TEST(Request, InvalidBodiesAre400NamingTheField) {
  EXPECT_EQ(chat_error("{oops").status, 400);
  EXPECT_EQ(chat_error("[1]").status, 400);
  EXPECT_EQ(chat_error("\"text\"").status, 400);
  EXPECT_EQ(chat_error("{}").param, "messages");
  EXPECT_EQ(chat_error(R"({"messages": []})").param, "messages");
  EXPECT_EQ(chat_error(R"({"messages": "hi"})").param, "messages");
  EXPECT_EQ(chat_error(R"({"messages": [{"content": "hi"}]})").param, "messages");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "tool", "content": "hi"}]})").param, "messages");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user"}]})").param, "messages");
  EXPECT_EQ(
      chat_error(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})").param,
      "messages");
  const std::string hi = std::string("{") + kHi;
  EXPECT_EQ(chat_error(hi + R"(, "temperature": 2.5})").param, "temperature");
  EXPECT_EQ(chat_error(hi + R"(, "temperature": "hot"})").param, "temperature");
  EXPECT_EQ(chat_error(hi + R"(, "top_p": 1.5})").param, "top_p");
  EXPECT_EQ(chat_error(hi + R"(, "n": 2})").param, "n");
  EXPECT_EQ(chat_error(hi + R"(, "max_tokens": 0})").param, "max_tokens");
  EXPECT_EQ(chat_error(hi + R"(, "max_tokens": 1.5})").param, "max_tokens");
  EXPECT_EQ(chat_error(hi + R"(, "max_tokens": 18446744073709551615})").param, "max_tokens");
  EXPECT_EQ(chat_error(hi + R"(, "stop": 5})").param, "stop");
  EXPECT_EQ(chat_error(hi + R"(, "stop": ["a","b","c","d","e"]})").param, "stop");
  EXPECT_EQ(chat_error(hi + R"(, "presence_penalty": 3})").param, "presence_penalty");
  EXPECT_EQ(chat_error(hi + R"(, "top_logprobs": 2})").param, "top_logprobs");
  EXPECT_EQ(chat_error(hi + R"(, "logprobs": true, "top_logprobs": 21})").param, "top_logprobs");
  EXPECT_EQ(chat_error(hi + R"(, "logit_bias": {"x": 1}})").param, "logit_bias");
  EXPECT_EQ(chat_error(hi + R"(, "logit_bias": {"5": 101}})").param, "logit_bias");
  EXPECT_EQ(chat_error(hi + R"(, "stream": "yes"})").param, "stream");
  EXPECT_EQ(chat_error(hi + R"(, "tools": [{"type": "function"}]})").param, "tools");
  EXPECT_EQ(chat_error(hi + R"(, "response_format": {"type": "json_object"}})").param,
            "response_format");
  EXPECT_EQ(chat_error(hi + R"(, "seed": "x"})").param, "seed");
  // Null means "not given", as in OpenAI's API.
  EXPECT_EQ(chat_error(hi + R"(, "temperature": null, "stop": null, "seed": null})").status, 0);
}

TEST(Request, CompletionPrompts) {
  auto parse = [](const std::string& body) {
    return parse_completion_request(parse_json_object(body));
  };
  EXPECT_EQ(*parse(R"({"prompt": "once"})").prompt_text, "once");
  EXPECT_EQ(*parse(R"({"prompt": ["once"]})").prompt_text, "once");
  EXPECT_EQ(parse(R"({"prompt": [1, 2, 3]})").prompt_tokens, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(parse(R"({"prompt": [[4, 5]]})").prompt_tokens, (std::vector<int32_t>{4, 5}));
  EXPECT_EQ(parse(R"({"prompt": "x"})").params.max_tokens, 16);  // the legacy API's default
  EXPECT_EQ(parse(R"({"prompt": "x", "logprobs": 2})").params.top_logprobs, 2);
  EXPECT_EQ(completion_error("{}").param, "prompt");
  EXPECT_EQ(completion_error(R"({"prompt": ["a", "b"]})").param, "prompt");
  EXPECT_EQ(completion_error(R"({"prompt": [1, -2]})").param, "prompt");
  EXPECT_EQ(completion_error(R"({"prompt": []})").param, "prompt");
  EXPECT_EQ(completion_error(R"({"prompt": 5})").param, "prompt");
  EXPECT_EQ(completion_error(R"({"prompt": "x", "echo": true})").param, "echo");
  EXPECT_EQ(completion_error(R"({"prompt": "x", "best_of": 3})").param, "best_of");
  EXPECT_EQ(completion_error(R"({"prompt": "x", "suffix": "y"})").param, "suffix");
}

TEST(Request, TokenizeAndDetokenize) {
  const TokenizeRequest t =
      parse_tokenize_request(parse_json_object(R"({"content": "a", "add_special": true})"));
  EXPECT_EQ(t.content, "a");
  EXPECT_TRUE(t.add_special);
  EXPECT_THROW(parse_tokenize_request(parse_json_object("{}")), ApiError);
  EXPECT_EQ(parse_detokenize_request(parse_json_object(R"({"tokens": [1, 2]})")),
            (std::vector<int32_t>{1, 2}));
  EXPECT_THROW(parse_detokenize_request(parse_json_object(R"({"tokens": [1, "a"]})")), ApiError);
}

TEST(Request, ErrorObjectIsOpenAIs) {
  const json body =
      ApiError(404, "no such model", "invalid_request_error", "model", "model_not_found").body();
  EXPECT_EQ(body["error"]["message"], "no such model");
  EXPECT_EQ(body["error"]["type"], "invalid_request_error");
  EXPECT_EQ(body["error"]["param"], "model");
  EXPECT_EQ(body["error"]["code"], "model_not_found");
  EXPECT_TRUE(ApiError(400, "x").body()["error"]["param"].is_null());
}

TEST(ApiKey, ConstantTimeEquals) {
  EXPECT_TRUE(constant_time_equals("secret", "secret"));
  EXPECT_FALSE(constant_time_equals("secreT", "secret"));
  EXPECT_FALSE(constant_time_equals("secret2", "secret"));
  EXPECT_FALSE(constant_time_equals("secre", "secret"));
  EXPECT_FALSE(constant_time_equals("", "secret"));
  EXPECT_FALSE(constant_time_equals(std::string("secret\0", 7), "secret"));
}

}  // namespace
}  // namespace toy::server
