/* fake_kv.h — in-memory key/value store for auth unit tests (see fake_kv.c). */
#ifndef SALUS_TEST_FAKE_KV_H
#define SALUS_TEST_FAKE_KV_H
void fake_kv_fail(int on);
void fake_kv_clear(void);
extern unsigned long fake_kv_gets;
#endif
