// ConfigureApiTls / CheckApiTlsFiles on PEM files made here with OpenSSL:
// what is accepted, and that every refusal names the agent.conf key and file.
#include "agent/api/api_tls.h"

#include <httplib.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <chrono>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/api/api_server.h"
#include "agent/events/event_log.h"
#include "agent/store/sqlite_store.h"

namespace reactor {
namespace {

using ::testing::HasSubstr;

using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using CertPtr = std::unique_ptr<X509, decltype(&X509_free)>;

KeyPtr NewKey() { return KeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), EVP_PKEY_free); }

// A certificate for `cn` with `key`, signed by `issuer_key` as `issuer`
// (self-signed when issuer is null).
CertPtr NewCert(const std::string& cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
  CertPtr cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), std::rand() & 0x7fffffff);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, issuer ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, "IP:127.0.0.1");
  X509_add_ext(cert.get(), san, -1);
  X509_EXTENSION_free(san);
  X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256());
  return cert;
}

class ApiTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/api_tls_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string WriteCerts(const std::string& name, std::initializer_list<X509*> certs) {
    std::string path = dir_ + "/" + name;
    FILE* f = std::fopen(path.c_str(), "w");
    for (X509* c : certs) PEM_write_X509(f, c);
    std::fclose(f);
    return path;
  }
  std::string WriteKey(const std::string& name, EVP_PKEY* key, const char* password = nullptr) {
    std::string path = dir_ + "/" + name;
    FILE* f = std::fopen(path.c_str(), "w");
    if (password) {
      PEM_write_PrivateKey(f, key, EVP_aes_128_cbc(), nullptr, 0, nullptr, const_cast<char*>(password));
    } else {
      PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    }
    std::fclose(f);
    return path;
  }
  std::string WriteText(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  std::string dir_;
};

TEST_F(ApiTlsTest, AcceptsASelfSignedCertificateAndItsKey) {
  KeyPtr key = NewKey();
  CertPtr cert = NewCert("agent1", key.get(), nullptr, nullptr);
  EXPECT_TRUE(CheckApiTlsFiles({WriteCerts("c.pem", {cert.get()}), WriteKey("k.pem", key.get())}).ok());
}

TEST_F(ApiTlsTest, AcceptsALeafWithItsIntermediateInTheCertFile) {
  KeyPtr ca_key = NewKey(), key = NewKey();
  CertPtr ca = NewCert("ca", ca_key.get(), nullptr, nullptr);
  CertPtr leaf = NewCert("agent1", key.get(), ca.get(), ca_key.get());
  Status st = CheckApiTlsFiles({WriteCerts("chain.pem", {leaf.get(), ca.get()}), WriteKey("k.pem", key.get())});
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST_F(ApiTlsTest, NothingToCheckWithoutTls) { EXPECT_TRUE(CheckApiTlsFiles({"", ""}).ok()); }

TEST_F(ApiTlsTest, RefusesAKeyThatDoesNotMatchTheCertificate) {
  KeyPtr key = NewKey(), other = NewKey();
  CertPtr cert = NewCert("agent1", key.get(), nullptr, nullptr);
  const std::string c = WriteCerts("c.pem", {cert.get()}), k = WriteKey("other.pem", other.get());
  Status st = CheckApiTlsFiles({c, k});
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.IsInvalidArgument());
  EXPECT_EQ(st.message(), "[agent] tls_key_file: " + k +
                              ": the private key does not match the certificate in tls_cert_file (" + c + ")");
}

TEST_F(ApiTlsTest, NamesAFileThatCannotBeRead) {
  KeyPtr key = NewKey();
  CertPtr cert = NewCert("agent1", key.get(), nullptr, nullptr);
  const std::string c = WriteCerts("c.pem", {cert.get()}), k = WriteKey("k.pem", key.get());
  Status st = CheckApiTlsFiles({dir_ + "/missing.pem", k});
  EXPECT_EQ(st.code(), Status::Code::kIOError);
  EXPECT_EQ(st.message(), "[agent] tls_cert_file: " + dir_ + "/missing.pem: cannot read: No such file or directory");
  st = CheckApiTlsFiles({c, dir_ + "/missing.key"});
  EXPECT_EQ(st.code(), Status::Code::kIOError);
  EXPECT_EQ(st.message(), "[agent] tls_key_file: " + dir_ + "/missing.key: cannot read: No such file or directory");
}

TEST_F(ApiTlsTest, RefusesFilesThatAreNotWhatTheKeySays) {
  KeyPtr key = NewKey();
  CertPtr cert = NewCert("agent1", key.get(), nullptr, nullptr);
  const std::string c = WriteCerts("c.pem", {cert.get()}), k = WriteKey("k.pem", key.get());
  const std::string junk = WriteText("junk.pem", "not a certificate\n");
  Status st = CheckApiTlsFiles({junk, k});
  EXPECT_TRUE(st.IsInvalidArgument());
  EXPECT_THAT(st.message(), HasSubstr("[agent] tls_cert_file: " + junk + ": not a PEM certificate"));
  // The two swapped.
  st = CheckApiTlsFiles({k, c});
  EXPECT_THAT(st.message(), HasSubstr("[agent] tls_cert_file: " + k + ": not a PEM certificate"));
  st = CheckApiTlsFiles({c, c});
  EXPECT_THAT(st.message(), HasSubstr("[agent] tls_key_file: " + c + ": not an unencrypted PEM private key"));
}

TEST_F(ApiTlsTest, RefusesAnEncryptedKeyWithoutAskingForItsPassword) {
  KeyPtr key = NewKey();
  CertPtr cert = NewCert("agent1", key.get(), nullptr, nullptr);
  const std::string k = WriteKey("enc.pem", key.get(), "secret");
  Status st = CheckApiTlsFiles({WriteCerts("c.pem", {cert.get()}), k});
  EXPECT_TRUE(st.IsInvalidArgument());
  EXPECT_THAT(st.message(), HasSubstr("[agent] tls_key_file: " + k + ": not an unencrypted PEM private key"));
}

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

ApiContext TlsContext(const ApiTlsFiles& tls) {
  // The API server streams events from its store, so it needs one.
  static std::unique_ptr<SqliteStore> store = std::move(SqliteStore::Open(":memory:", SystemClock::Get())).value();
  static EventLog events(*store, SystemClock::Get());
  ApiContext ctx;
  ctx.store = store.get();
  ctx.events = &events;
  ctx.token = "tok";
  ctx.manager = "host1";
  ctx.wake = [] {};
  ctx.tls = tls;
  return ctx;
}

TEST_F(ApiTlsTest, ApiServerServesHttpsAndItsSessionCookieIsSecure) {
  KeyPtr key = NewKey();
  CertPtr cert = NewCert("agent1", key.get(), nullptr, nullptr);
  const std::string c = WriteCerts("c.pem", {cert.get()});
  ApiServer server(TlsContext({c, WriteKey("k.pem", key.get())}));
  const int port = FreePort();
  Status started = server.Start("127.0.0.1:" + std::to_string(port));
  ASSERT_TRUE(started.ok()) << started.ToString();

  httplib::SSLClient tls("127.0.0.1", port);
  tls.set_ca_cert_path(c.c_str());
  tls.enable_server_certificate_verification(true);
  // The server thread may not be accepting yet.
  httplib::Result health = tls.Get("/v1/health", {{"Authorization", "Bearer tok"}});
  for (int i = 0; i < 100 && !health; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    health = tls.Get("/v1/health", {{"Authorization", "Bearer tok"}});
  }
  ASSERT_TRUE(health) << httplib::to_string(health.error());
  EXPECT_EQ(health->status, 200);
  auto login = tls.Post("/v1/session", R"({"token":"tok"})", "application/json");
  ASSERT_TRUE(login);
  EXPECT_EQ(login->status, 200);
  EXPECT_THAT(login->get_header_value("Set-Cookie"), HasSubstr("; Secure"));

  // Plain HTTP on the TLS port gets no answer.
  httplib::Client plain("127.0.0.1", port);
  plain.set_read_timeout(2, 0);
  EXPECT_FALSE(plain.Get("/v1/health", {{"Authorization", "Bearer tok"}}));
  server.Stop();
}

TEST_F(ApiTlsTest, ApiServerStartReturnsWhyItsTlsFilesFailed) {
  KeyPtr key = NewKey(), other = NewKey();
  CertPtr cert = NewCert("agent1", key.get(), nullptr, nullptr);
  const std::string c = WriteCerts("c.pem", {cert.get()}), k = WriteKey("other.pem", other.get());
  ApiServer server(TlsContext({c, k}));
  Status st = server.Start("127.0.0.1:" + std::to_string(FreePort()));
  EXPECT_THAT(st.message(), HasSubstr("[agent] tls_key_file: " + k + ": the private key does not match"));
}

}  // namespace
}  // namespace reactor
