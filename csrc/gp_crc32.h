/* gp_crc32.h: zlib's crc32 (IEEE, reflected polynomial 0xEDB88320), continued from `crc` as
 * zlib's is (0 to start), so that pieces can be summed in turn. The table is built per call
 * (2,048 steps) rather than kept in a global. Used by the model reader (a file's CRC-32) and by
 * ganpack-sample (PNG chunks). The tests' model writer keeps a bit-by-bit one of its own, written
 * from the spec, and the Python tests write files with zlib's: the reader's is checked by both.
 */
#ifndef GP_CRC32_H
#define GP_CRC32_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t gp_crc32(uint32_t crc, const uint8_t *data /* (size) */, size_t size) {
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1u ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    crc ^= 0xFFFFFFFFu;
    for (size_t i = 0; i < size; i++) crc = table[(crc ^ data[i]) & 0xFFu] ^ (crc >> 8);
    return crc ^ 0xFFFFFFFFu;
}

#endif /* GP_CRC32_H */
