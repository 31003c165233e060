#include <cstdio>

int main() {
  std::puts("reactor-agent: not yet");
  return 1;
}
