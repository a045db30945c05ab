// The kernel's share of exporting spans over loopback TCP, with no encoding
// at all: the floor under `worker_cpu_ns_per_exported_span` (issue #20).
//
// One connection to a receiver in a child process that reads and discards;
// per request, the two send calls runtrace's exporter makes (a 186-byte
// header, then a body of 512 spans x S bytes: 145 is what the soak's spans
// encode to, read from strace), then a 76-byte response read back. Between
// requests the sender sleeps PACE_US microseconds, as the batch worker
// waits for its next batch (5120 for a batch every 5.12 ms: 100,000
// spans/s in batches of 512; 10240 for 50,000/s, the soak's default rate; 0
// for back to back). Prints the sending thread's CPU time per span
// (CLOCK_THREAD_CPUTIME_ID): user time is nearly nil, so this is the
// kernel's TCP send and, on loopback, the receiving side's TCP work too
// (it runs in the sender's softirq, and is charged to the sender's thread on
// kernels built without CONFIG_IRQ_TIME_ACCOUNTING, as this machine's is),
// plus the sleeps' wake-ups. The pause follows each request, so the real
// rate is a little below the nominal one.
//
//   gcc -O2 -o /tmp/loopback_floor docs/loopback_floor.c
//   /tmp/loopback_floor 145 200 10240   # S, requests, PACE_US
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { SPANS = 512, HEADER = 186, RESPONSE = 76 };

static double thread_cpu_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

// Reads and discards requests of `size` bytes, answering each.
static void receive(int listener, size_t size) {
    int c = accept(listener, 0, 0);
    char *buf = malloc(65536);
    char response[RESPONSE] = {0};
    for (;;) {
        size_t got = 0;
        while (got < size) {
            ssize_t n = read(c, buf, 65536);
            if (n <= 0) _exit(0);
            got += (size_t)n;
        }
        if (write(c, response, RESPONSE) != RESPONSE) _exit(1);
    }
}

static int request(int s, const char *header, const char *body, size_t body_len) {
    char response[RESPONSE];
    if (send(s, header, HEADER, MSG_NOSIGNAL) != HEADER) return -1;
    if (send(s, body, body_len, MSG_NOSIGNAL) != (ssize_t)body_len) return -1;
    for (size_t got = 0; got < RESPONSE;) {
        ssize_t n = recv(s, response + got, RESPONSE - got, 0);
        if (n <= 0) return -1;
        got += (size_t)n;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s BYTES_PER_SPAN REQUESTS PACE_US\n", argv[0]);
        return 2;
    }
    size_t span_bytes = (size_t)atoi(argv[1]);
    int requests = atoi(argv[2]);
    long pace_us = atol(argv[3]);
    size_t body_len = span_bytes * SPANS;

    int listener = socket(AF_INET, SOCK_STREAM, 0);
    if (listener < 0) {
        perror("socket");
        return 1;
    }
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t addr_len = sizeof addr;
    if (bind(listener, (void *)&addr, sizeof addr) || listen(listener, 1) ||
        getsockname(listener, (void *)&addr, &addr_len)) {
        perror("listen");
        return 1;
    }
    pid_t receiver = fork();
    if (receiver < 0) {
        perror("fork");
        return 1;
    }
    if (receiver == 0) receive(listener, HEADER + body_len);

    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    if (s < 0 || setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) ||
        connect(s, (void *)&addr, sizeof addr)) {
        perror("connect");
        return 1;
    }
    char header[HEADER];
    memset(header, 'h', HEADER);
    char *body = malloc(body_len);
    memset(body, 7, body_len);
    for (int i = 0; i < 20; i++)
        if (request(s, header, body, body_len)) return 1;

    double start = thread_cpu_ns();
    for (int i = 0; i < requests; i++) {
        if (request(s, header, body, body_len)) return 1;
        if (pace_us > 0) {
            struct timespec pause = {pace_us / 1000000, (pace_us % 1000000) * 1000};
            nanosleep(&pause, 0);
        }
    }
    double per_span = (thread_cpu_ns() - start) / ((double)requests * SPANS);
    printf("%zu bytes/span, pace %ld us: sender CPU %.1f ns/span\n", span_bytes, pace_us, per_span);
    close(s);
    kill(receiver, SIGKILL);
    waitpid(receiver, 0, 0);
    return 0;
}
