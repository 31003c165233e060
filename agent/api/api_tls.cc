#include "agent/api/api_tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace reactor {

namespace {

// OpenSSL's queued errors as one line (and the queue emptied).
std::string OpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += (out.empty() ? "" : "; ") + std::string(buf);
  }
  return out.empty() ? "no detail from OpenSSL" : out;
}

// Refuses every password prompt: the agent runs unattended, and OpenSSL's
// default would read one from the terminal.
int NoPassword(char*, int, int, void*) { return 0; }

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

// REQUIRES: errno is fopen's.
Status OpenFailure(const std::string& key, const std::string& path) {
  const int err = errno;
  return Status::IOError("[agent] " + key + ": " + path, std::string("cannot read: ") + std::strerror(err));
}

}  // namespace

Status ConfigureApiTls(ssl_ctx_st& ctx, const ApiTlsFiles& files) {
  ERR_clear_error();
  SSL_CTX_set_options(&ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION) != 1) {
    return Status::Internal("TLS: cannot require TLS 1.2: " + OpenSslErrors());
  }
  SSL_CTX_set_default_passwd_cb(&ctx, NoPassword);

  // Opened here first so that a missing or unreadable file says so plainly,
  // not as an OpenSSL "system library" code.
  if (std::unique_ptr<FILE, FileCloser> f(std::fopen(files.cert_file.c_str(), "r")); !f) {
    return OpenFailure("tls_cert_file", files.cert_file);
  }
  if (SSL_CTX_use_certificate_chain_file(&ctx, files.cert_file.c_str()) != 1) {
    return Status::InvalidArgument("[agent] tls_cert_file: " + files.cert_file +
                                   ": not a PEM certificate (chain): " + OpenSslErrors());
  }

  std::unique_ptr<FILE, FileCloser> kf(std::fopen(files.key_file.c_str(), "r"));
  if (!kf) return OpenFailure("tls_key_file", files.key_file);
  std::unique_ptr<EVP_PKEY, KeyFree> pkey(PEM_read_PrivateKey(kf.get(), nullptr, NoPassword, nullptr));
  if (!pkey) {
    return Status::InvalidArgument("[agent] tls_key_file: " + files.key_file +
                                   ": not an unencrypted PEM private key: " + OpenSslErrors());
  }
  // Checked before SSL_CTX_use_PrivateKey, whose own mismatch report is a
  // bare "key values mismatch".
  X509* leaf = SSL_CTX_get0_certificate(&ctx);
  if (leaf == nullptr || X509_check_private_key(leaf, pkey.get()) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument("[agent] tls_key_file: " + files.key_file +
                                   ": the private key does not match the certificate in tls_cert_file (" +
                                   files.cert_file + ")");
  }
  if (SSL_CTX_use_PrivateKey(&ctx, pkey.get()) != 1 || SSL_CTX_check_private_key(&ctx) != 1) {
    return Status::InvalidArgument("[agent] tls_key_file: " + files.key_file + ": " + OpenSslErrors());
  }
  return Status::Ok();
}

Status CheckApiTlsFiles(const ApiTlsFiles& files) {
  if (!files.enabled()) return Status::Ok();
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx) return Status::Internal("TLS: cannot create an OpenSSL context: " + OpenSslErrors());
  return ConfigureApiTls(*ctx, files);
}

}  // namespace reactor
