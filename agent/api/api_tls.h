// TLS for the API listener ([agent] tls_cert_file, tls_key_file): loading
// and checking the PEM files, and setting up the OpenSSL context that
// cpp-httplib's SSLServer serves with.
#pragma once

#include <string>

#include "agent/common/status.h"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace reactor {

/// The listener's certificate and key, as agent.conf names them.
struct ApiTlsFiles {
  std::string cert_file;  // PEM: the certificate, then any intermediates
  std::string key_file;   // PEM: its private key, unencrypted
  bool enabled() const { return !cert_file.empty(); }
};

/// Puts `files` into `ctx`: TLS 1.2 or later, no compression or
/// renegotiation, the certificate chain and the key. Never prompts for a
/// password (an encrypted key is an error). Errors name the agent.conf key
/// and the file: "[agent] tls_key_file: /etc/reactor/api.key: the private
/// key does not match the certificate in tls_cert_file (...)"; IOError for
/// a file that cannot be read, InvalidArgument for one that is not what it
/// should be. On failure `ctx` may hold part of it (the caller drops it).
Status ConfigureApiTls(ssl_ctx_st& ctx, const ApiTlsFiles& files);

/// ConfigureApiTls on a context of its own that is then dropped: checks the
/// files before anything else starts. OK when `files` is not enabled.
Status CheckApiTlsFiles(const ApiTlsFiles& files);

}  // namespace reactor
