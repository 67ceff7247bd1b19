/*
 * dict.c — lookup in the word table compiled at build time by
 * tools/gen_deid_dict.c (open addressing, linear probing; each slot holds a
 * 32-bit hash fingerprint and the word's DF_* flags).
 */
#include "deid/deid_int.h"

static uint32_t probe(const uint64_t *tab, unsigned bits, uint64_t h)
{
	uint32_t mask = (1u << bits) - 1;
	uint32_t fp = (uint32_t)(h >> 32);
	if (fp == 0)
		fp = 1;
	for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
		uint64_t s = tab[i];
		if (s == 0)
			return 0;
		if ((uint32_t)(s >> 32) == fp)
			return (uint32_t)s;
	}
}

uint32_t deid_dict_lookup(uint64_t h)
{
	return probe(salus_deid_dict, salus_deid_dict_bits, h);
}

uint32_t deid_medpfx_lookup(uint64_t h)
{
	return probe(salus_deid_medpfx, salus_deid_medpfx_bits, h);
}
