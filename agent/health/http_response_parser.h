// Incremental parser of one HTTP/1.x response to a health probe's GET, on
// Node's http_parser (Debian's libhttp-parser): the status line and the body
// framing (Content-Length, chunked, or until the peer closes), so the prober
// knows where a response ends and whether its connection can carry the next
// request. Headers and body are consumed and discarded.
#pragma once

#include <http_parser.h>

#include <cstddef>

namespace reactor {

class HttpResponseParser {
 public:
  enum class Progress {
    kIncomplete,  // feed more bytes (or the end of the stream)
    kComplete,    // a whole final response was read: status(), keep_alive()
    kError,       // not HTTP, or malformed: error()
  };

  HttpResponseParser();
  HttpResponseParser(const HttpResponseParser&) = delete;
  HttpResponseParser& operator=(const HttpResponseParser&) = delete;

  /// Forgets everything: the next bytes start a new response.
  void Reset();
  /// Feeds bytes received from the peer. Interim 1xx responses (but 101) are
  /// skipped. After kComplete or kError the parser must be Reset before more
  /// bytes are fed. Bytes after the end of the response make it complete
  /// with keep_alive() false: the connection cannot be trusted for the next.
  Progress Feed(const char* data, size_t size);
  /// The peer closed the stream: completes a response framed by the close,
  /// else kError (kIncomplete when no byte has been received: see started()).
  Progress FeedEof();

  /// True once any byte has been fed since Reset.
  bool started() const { return started_; }
  /// The final response's status code. REQUIRES: the last Feed* returned kComplete.
  int status() const { return status_; }
  /// The connection may carry another request (HTTP/1.1 without
  /// `Connection: close`, or 1.0 with keep-alive; no bytes past the response).
  bool keep_alive() const { return keep_alive_; }
  /// Why parsing failed (a static string). REQUIRES: the last Feed* returned kError.
  const char* error() const { return error_; }

 private:
  static int OnMessageComplete(http_parser* p);
  static const http_parser_settings& Settings();

  http_parser parser_;
  bool started_ = false;
  bool complete_ = false;
  bool keep_alive_ = false;
  int status_ = 0;
  const char* error_ = "";
};

}  // namespace reactor
