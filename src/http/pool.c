/* pool.c — blocking-work thread pool (see pool.h). */
#include "http/pool.h"

#include <pthread.h>

#include "core/alloc.h"
#include "core/err.h"

struct job {
	void (*fn)(void *);
	void *arg;
	struct job *next;
};

struct salus_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, *tail;
	int stopping;
	int nthreads;
	pthread_t *threads;
};

static void *worker(void *arg)
{
	struct salus_pool *p = arg;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (!p->head && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		struct job *j = p->head;
		if (!j) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->mu);
		j->fn(j->arg);
		salus_free(j);
	}
}

int salus_pool_new(int threads, struct salus_pool **out)
{
	struct salus_pool *p = salus_calloc(1, sizeof *p);
	if (!p)
		return SALUS_ENOMEM;
	p->threads = salus_calloc((size_t)threads, sizeof *p->threads);
	if (!p->threads) {
		salus_free(p);
		return SALUS_ENOMEM;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (int i = 0; i < threads; i++) {
		if (pthread_create(&p->threads[i], &attr, worker, p))
			break;
		p->nthreads++;
	}
	pthread_attr_destroy(&attr);
	if (!p->nthreads) {
		salus_pool_free(p);
		return SALUS_ENOMEM;
	}
	*out = p;
	return 0;
}

int salus_pool_submit(struct salus_pool *p, void (*fn)(void *), void *arg)
{
	struct job *j = salus_malloc(sizeof *j);
	if (!j)
		return SALUS_ENOMEM;
	*j = (struct job){fn, arg, NULL};
	pthread_mutex_lock(&p->mu);
	if (p->stopping) {
		pthread_mutex_unlock(&p->mu);
		salus_free(j);
		return SALUS_EBUSY;
	}
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

void salus_pool_stop(struct salus_pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	p->nthreads = 0;
}

void salus_pool_free(struct salus_pool *p)
{
	if (!p)
		return;
	salus_pool_stop(p);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	salus_free(p->threads);
	salus_free(p);
}
