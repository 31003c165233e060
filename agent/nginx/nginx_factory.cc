#include "agent/nginx/nginx_factory.h"

#include "agent/nginx/local_nginx_controller.h"

namespace reactor {

std::unique_ptr<NginxController> MakeNginxController(const NginxSettings& settings, EventSink& events, Clock& clock) {
  return std::make_unique<LocalNginxController>(settings, events, clock);
}

}  // namespace reactor
