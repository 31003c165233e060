#include "agent/health/http_response_parser.h"

namespace reactor {

// Only the end of a message matters; headers and body are skipped by the
// parser itself, without callbacks.
const http_parser_settings& HttpResponseParser::Settings() {
  static const http_parser_settings settings = [] {
    http_parser_settings s;
    http_parser_settings_init(&s);
    s.on_message_complete = &HttpResponseParser::OnMessageComplete;
    return s;
  }();
  return settings;
}

HttpResponseParser::HttpResponseParser() { Reset(); }

void HttpResponseParser::Reset() {
  http_parser_init(&parser_, HTTP_RESPONSE);
  parser_.data = this;
  started_ = false;
  complete_ = false;
  keep_alive_ = false;
  status_ = 0;
  error_ = "";
}

int HttpResponseParser::OnMessageComplete(http_parser* p) {
  auto* self = static_cast<HttpResponseParser*>(p->data);
  const unsigned code = p->status_code;
  // An interim answer (100 Continue, 103 Early Hints): the final one follows.
  if (code >= 100 && code < 200 && code != 101) return 0;
  self->complete_ = true;
  self->status_ = static_cast<int>(code);
  self->keep_alive_ = http_should_keep_alive(p) != 0 && !p->upgrade;
  // Stop at the end of this response: anything after it is not ours.
  http_parser_pause(p, 1);
  return 0;
}

HttpResponseParser::Progress HttpResponseParser::Feed(const char* data, size_t size) {
  if (size == 0) return Progress::kIncomplete;
  started_ = true;
  const size_t parsed = http_parser_execute(&parser_, &Settings(), data, size);
  if (complete_) {
    if (parsed < size) keep_alive_ = false;
    return Progress::kComplete;
  }
  const auto err = HTTP_PARSER_ERRNO(&parser_);
  if (err != HPE_OK || parser_.upgrade || parsed != size) {
    error_ = err != HPE_OK ? http_errno_description(err) : "unexpected protocol upgrade";
    return Progress::kError;
  }
  return Progress::kIncomplete;
}

HttpResponseParser::Progress HttpResponseParser::FeedEof() {
  if (complete_) return Progress::kComplete;
  if (!started_) return Progress::kIncomplete;
  http_parser_execute(&parser_, &Settings(), nullptr, 0);
  if (complete_) {
    keep_alive_ = false;  // the peer has closed
    return Progress::kComplete;
  }
  const auto err = HTTP_PARSER_ERRNO(&parser_);
  error_ = err != HPE_OK ? http_errno_description(err) : "the response ended early";
  return Progress::kError;
}

}  // namespace reactor
