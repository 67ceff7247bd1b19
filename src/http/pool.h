/*
 * pool.h — a fixed pool of threads for blocking work (libuv's threadpool
 * idea): writes that wait for a group commit, password hashing.  Jobs run in
 * submission order; salus_pool_free drains the queue before it returns.
 */
#ifndef SALUS_HTTP_POOL_H
#define SALUS_HTTP_POOL_H

struct salus_pool;

int salus_pool_new(int threads, struct salus_pool **out /* OUT */);
/* Queue fn(arg).  Errors: SALUS_ENOMEM, SALUS_EBUSY (pool is stopping). */
int salus_pool_submit(struct salus_pool *p, void (*fn)(void *), void *arg);
/* Run the queued jobs and join the threads; later submits fail with
 * SALUS_EBUSY (the pool stays valid until freed).  Idempotent. */
void salus_pool_stop(struct salus_pool *p);
/* salus_pool_stop, then free.  NULL-safe. */
void salus_pool_free(struct salus_pool *p);

#endif
