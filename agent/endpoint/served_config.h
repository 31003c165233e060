// What nginx is given of an endpoint record: its configuration, with the
// request hold (scale to zero, [loadbalancer:nginx] hold_timeout) turned off
// unless the endpoint may launch an instance now. A paused, stopped or
// deleting endpoint answers at once with no healthy instance (503 or
// `redirect`), as does one that cannot scale (static, max_instances = 0).
#pragma once

#include "agent/endpoint/endpoint_config.h"
#include "agent/endpoint/endpoint_registry.h"

namespace reactor {

/// True iff a request that finds no healthy instance of `rec` may be held
/// while one starts: running, a good record, a cloud that launches,
/// max_instances >= 1, and hold_timeout and hold_max above 0.
bool MayHoldRequests(const EndpointRecord& rec);

/// rec.config, with hold_timeout = 0 unless MayHoldRequests(rec).
EndpointConfig ServedConfig(const EndpointRecord& rec);

}  // namespace reactor
