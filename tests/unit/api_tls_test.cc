// ConfigureApiTls / CheckApiTlsFiles on PEM files made here with OpenSSL:
// what is accepted, and that every refusal names the agent.conf key and file.
#include "agent/api/api_tls.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
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
  if (geteuid() != 0) {  // root reads a 0000 file anyway
    ASSERT_EQ(chmod(k.c_str(), 0), 0);
    st = CheckApiTlsFiles({c, k});
    EXPECT_EQ(st.message(), "[agent] tls_key_file: " + k + ": cannot read: Permission denied");
  }
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

}  // namespace
}  // namespace reactor
