// Wiring: the NginxController the agent uses for its [nginx] settings.
#pragma once

#include <memory>

#include "agent/common/clock.h"
#include "agent/common/event_sink.h"
#include "agent/nginx/nginx_controller.h"

namespace reactor {

/// The controller for the nginx on this host (managed or system mode, dynamic
/// or reload upstreams, as `settings` say). `events` and `clock` must outlive
/// it. Call Start() before anything else reaches nginx.
std::unique_ptr<NginxController> MakeNginxController(const NginxSettings& settings, EventSink& events, Clock& clock);

}  // namespace reactor
