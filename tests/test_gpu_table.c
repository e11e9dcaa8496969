/* test_gpu_table.c: the project's GPU table: keys and device names find the right card, a
 * sibling without figures never borrows another card's, and every entry states its sources. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "../model/gpu_table.h"

static void test_gpu_table_find_by_key(void **state) {
    (void)state;
    const GpuSpec *g = gpu_table_find("rtx4070");
    assert_non_null(g);
    assert_string_equal(g->name, "NVIDIA GeForce RTX 4070");
    assert_true(g->memory_bytes == (size_t)12 << 30);
    assert_null(gpu_table_find("rtx9999"));
    assert_null(gpu_table_find(NULL));
}

static void test_gpu_table_match_device_names(void **state) {
    (void)state;
    assert_true(gpu_table_match("NVIDIA H100 80GB HBM3")->peak_tflops_f16 == 989.4);
    assert_string_equal(gpu_table_match("NVIDIA H100 PCIe")->key, "h100-pcie");
    assert_string_equal(gpu_table_match("NVIDIA H200")->key, "h200");
    assert_string_equal(gpu_table_match("NVIDIA A100-SXM4-80GB")->key, "a100");
    assert_true(gpu_table_match("NVIDIA GeForce RTX 4070")->peak_tflops_f16 == 58.3);
    /* siblings we have no figures for match nothing, not the RTX 4070 */
    assert_null(gpu_table_match("NVIDIA GeForce RTX 4070 Ti"));
    assert_null(gpu_table_match("NVIDIA GeForce RTX 4070 SUPER"));
    assert_null(gpu_table_match("Some Future GPU"));
    /* consumer Ada and Ampere at their f32-accumulate rate: half the f16-accumulate headline */
    assert_true(gpu_table_match("NVIDIA GeForce RTX 4090")->peak_tflops_f16 == 165.2);
    assert_true(gpu_table_match("NVIDIA GeForce RTX 4080")->peak_tflops_f16 == 97.5);
    assert_true(gpu_table_match("NVIDIA GeForce RTX 3090")->peak_tflops_f16 == 71.0);
    assert_true(gpu_table_match("NVIDIA GeForce RTX 3080")->peak_tflops_f16 == 59.5);
    assert_string_equal(gpu_table_find("rtx3080")->name, "NVIDIA GeForce RTX 3080");
    assert_null(gpu_table_match("NVIDIA GeForce RTX 4090 D"));
    assert_null(gpu_table_match("NVIDIA GeForce RTX 4080 SUPER"));
    assert_null(gpu_table_match("NVIDIA GeForce RTX 3090 Ti"));
    assert_null(gpu_table_match("NVIDIA GeForce RTX 3080 Ti"));
    assert_null(gpu_table_match(NULL));
}

static void test_gpu_table_every_entry_has_sources(void **state) {
    (void)state;
    size_t n = 0;
    const GpuSpec *all = gpu_table_all(&n);
    assert_true(n >= 10);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(all[i].key);
        assert_true(all[i].memory_bytes > 0 && all[i].memory_source && all[i].memory_source[0]);
        assert_true(all[i].peak_tflops_f16 > 0 && all[i].peak_source && all[i].peak_source[0]);
        assert_true(all[i].context_bytes > 0 && all[i].context_source[0]);
        assert_ptr_equal(gpu_table_find(all[i].key), gpu_table_find(all[i].key));
        assert_string_equal(gpu_table_find(all[i].key)->key, all[i].key);
    }
    char keys[256];
    gpu_table_keys(keys, sizeof keys);
    assert_non_null(strstr(keys, "rtx4070"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpu_table_find_by_key),
        cmocka_unit_test(test_gpu_table_match_device_names),
        cmocka_unit_test(test_gpu_table_every_entry_has_sources),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
