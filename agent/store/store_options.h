// The Store options an agent.conf gives ([agent] etcd_* keys).
#pragma once

#include "agent/common/agent_config.h"
#include "agent/store/store.h"

namespace reactor {

StoreOptions StoreOptionsFor(const AgentConfig& config);

}  // namespace reactor
