/* udp-rr.c - sequential UDP echo round trips from the kernel's UDP, for bench/udp-echo.ts:
 *   udp-rr HOST PORT SIZE COUNT SECONDS
 * Each datagram waits for its echo (up to 1 s) before the next one goes. Prints one JSON line
 * like test/clients/udp-echo-client.ts: sent, received, lost, corrupted, seconds,
 * roundTripsPerSecond. Stops after COUNT round trips or SECONDS, whichever comes first. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + ts.tv_nsec * 1e-9; }

int main(int argc, char **argv) {
  if (argc < 6) { fprintf(stderr, "usage: udp-rr HOST PORT SIZE COUNT SECONDS\n"); return 2; }
  int size = atoi(argv[3]);
  long count = atol(argv[4]);
  double secs = atof(argv[5]);
  if (size < 4 || size > 65507) { fprintf(stderr, "size 4..65507\n"); return 2; }
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
  if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1) { fprintf(stderr, "bad host\n"); return 2; }
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) { perror("connect"); return 1; }
  struct timeval tv = {.tv_sec = 1};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  static unsigned char out[65536], in[65536];
  for (int i = 0; i < size; i++) out[i] = (unsigned char)(i * 7 + (i >> 8));
  long sent = 0, received = 0, corrupted = 0;
  double start = now(), deadline = start + secs;
  for (long seq = 0; seq < count && now() < deadline; seq++) {
    memcpy(out, &seq, 4);
    if (send(fd, out, size, 0) != size) { perror("send"); break; }
    sent++;
    for (;;) {
      ssize_t n = recv(fd, in, sizeof(in), 0);
      if (n < 0) break; /* timeout or error: counted as lost */
      if (memcmp(in, &seq, 4) != 0) continue; /* a late echo of an earlier one */
      if (n == size && memcmp(in, out, size) == 0) received++;
      else corrupted++;
      break;
    }
  }
  double elapsed = now() - start;
  printf("{\"sent\":%ld,\"received\":%ld,\"lost\":%ld,\"corrupted\":%ld,\"seconds\":%.6f,\"roundTripsPerSecond\":%.1f}\n",
         sent, received, sent - received - corrupted, corrupted, elapsed, received / elapsed);
  return 0;
}
