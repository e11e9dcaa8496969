/* json_path.c: dotted-path access to cJSON trees for the tests (json_path.h). */
#include "json_path.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cJSON *json_path_parse(const char *text, char *err, size_t err_len) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(text, &end, 1);
    if (!j && err)
        snprintf(err, err_len, "JSON error at byte %zu: '%.20s'", end ? (size_t)(end - text) : 0,
                 end ? end : "");
    return j;
}

const cJSON *json_path_get(const cJSON *root, const char *path) {
    const cJSON *j = root;
    const char *p = path;
    while (j && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        char key[128];
        if (n >= sizeof key)
            return NULL;
        memcpy(key, p, n);
        key[n] = 0;
        if (cJSON_IsArray(j)) {
            char *e;
            long i = strtol(key, &e, 10);
            j = (*e || e == key || i < 0) ? NULL : cJSON_GetArrayItem(j, (int)i);
        } else {
            j = cJSON_GetObjectItemCaseSensitive(j, key);
        }
        p += n + (dot ? 1 : 0);
    }
    return j;
}

double json_path_num(const cJSON *root, const char *path) {
    const cJSON *v = json_path_get(root, path);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

const char *json_path_str(const cJSON *root, const char *path) {
    const cJSON *v = json_path_get(root, path);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}
