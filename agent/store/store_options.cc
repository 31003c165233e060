#include "agent/store/store_options.h"

namespace reactor {

StoreOptions StoreOptionsFor(const AgentConfig& config) {
  StoreOptions o;
  o.etcd_ca_file = config.etcd_ca_file;
  o.etcd_cert_file = config.etcd_cert_file;
  o.etcd_key_file = config.etcd_key_file;
  o.etcd_user = config.etcd_user;
  o.etcd_password_file = config.etcd_password_file;
  o.etcd_compaction = config.etcd_compaction;
  return o;
}

}  // namespace reactor
