/* ratelimit.c — token buckets per source address (see ratelimit.h). */
#include "http/ratelimit.h"

#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#include "core/alloc.h"
#include "core/err.h"

#define BUCKETS 8192 /* power of two */
#define STRIPES 64

struct bucket {
	double tokens;
	int64_t last_ms;
};

struct salus_ratelimit {
	double capacity;  /* tokens */
	double per_ms;    /* refill rate */
	uint64_t key[2];  /* hash key, so clients cannot aim at one bucket */
	pthread_mutex_t mu[STRIPES];
	struct bucket b[BUCKETS];
};

int salus_ratelimit_new(long per_minute, struct salus_ratelimit **out)
{
	struct salus_ratelimit *rl = salus_calloc(1, sizeof *rl);
	if (!rl)
		return SALUS_ENOMEM;
	rl->capacity = (double)per_minute;
	rl->per_ms = (double)per_minute / 60000.0;
	if (getrandom(rl->key, sizeof rl->key, 0) != (ssize_t)sizeof rl->key)
		rl->key[0] = (uint64_t)(uintptr_t)rl;
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_init(&rl->mu[i], NULL);
	for (int i = 0; i < BUCKETS; i++)
		rl->b[i].last_ms = -1;
	*out = rl;
	return 0;
}

void salus_ratelimit_free(struct salus_ratelimit *rl)
{
	if (!rl)
		return;
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&rl->mu[i]);
	salus_free(rl);
}

/* FNV-1a over the key and the address bytes. */
static uint32_t hash(const struct salus_ratelimit *rl, const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL ^ rl->key[0];
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	h ^= rl->key[1];
	h *= 0x9e3779b97f4a7c15ULL;
	return (uint32_t)(h >> 32);
}

bool salus_ratelimit_take(struct salus_ratelimit *rl, const struct sockaddr *addr, int64_t now_ms, int *retry_after_s)
{
	if (rl->capacity <= 0 || !addr)
		return true;
	const unsigned char *p;
	size_t n;
	if (addr->sa_family == AF_INET6) {
		p = ((const struct sockaddr_in6 *)(const void *)addr)->sin6_addr.s6_addr;
		n = 8; /* one /64 is one client */
	} else if (addr->sa_family == AF_INET) {
		p = (const unsigned char *)&((const struct sockaddr_in *)(const void *)addr)->sin_addr;
		n = 4;
	} else {
		return true;
	}
	uint32_t i = hash(rl, p, n) & (BUCKETS - 1);
	pthread_mutex_t *mu = &rl->mu[i % STRIPES];
	pthread_mutex_lock(mu);
	struct bucket *b = &rl->b[i];
	if (b->last_ms < 0) {
		b->tokens = rl->capacity;
		b->last_ms = now_ms;
	}
	if (now_ms > b->last_ms) {
		b->tokens += (double)(now_ms - b->last_ms) * rl->per_ms;
		if (b->tokens > rl->capacity)
			b->tokens = rl->capacity;
		b->last_ms = now_ms;
	}
	bool ok = b->tokens >= 1.0;
	if (ok) {
		b->tokens -= 1.0;
	} else {
		double wait_ms = (1.0 - b->tokens) / rl->per_ms;
		*retry_after_s = (int)(wait_ms / 1000.0) + 1;
	}
	pthread_mutex_unlock(mu);
	return ok;
}
