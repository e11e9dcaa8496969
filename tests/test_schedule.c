/* test_schedule.c: the training loop's learning-rate schedule (train/schedule.c) against
 * nanoGPT's get_lr. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>

#include "../train/schedule.h"

static void test_schedule_lr_nanogpt(void **state) {
    /* nanoGPT train.py: warmup lr*(it+1)/(warmup+1); past lr_decay_iters min_lr; cosine between */
    const double tol = 1e-6; /* float arithmetic of a few operations */
    float lr = 6e-4f, min_lr = 6e-5f;
    assert_true(fabs(schedule_lr(0, lr, 100, 1000, min_lr, 1) - 6e-4 * 1 / 101) < tol);
    assert_true(fabs(schedule_lr(99, lr, 100, 1000, min_lr, 1) - 6e-4 * 100 / 101) < tol);
    assert_true(fabs(schedule_lr(100, lr, 100, 1000, min_lr, 1) - 6e-4) < tol);
    assert_true(fabs(schedule_lr(550, lr, 100, 1000, min_lr, 1) - (6e-5 + 0.5 * (6e-4 - 6e-5))) <
                tol);
    assert_true(fabs(schedule_lr(1000, lr, 100, 1000, min_lr, 1) - 6e-5) < tol);
    assert_true(fabs(schedule_lr(5000, lr, 100, 1000, min_lr, 1) - 6e-5) < tol);
    assert_true(schedule_lr(5000, lr, 100, 1000, min_lr, 0) == lr);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule_lr_nanogpt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
