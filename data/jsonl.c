/* jsonl.c: one JSON Lines record -> its text field (see jsonl.h). Owns nothing else: lines
 * are found by data/corpus_prepare.c. */
#include <string.h>

#include <cjson/cJSON.h>

#include "jsonl.h"

int jsonl_doc_parse(JsonlDoc *doc, const char *line, size_t len, const char *key, Err *err) {
    memset(doc, 0, sizeof *doc);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (!root) {
        size_t at = end && end >= line && end <= line + len ? (size_t)(end - line) : 0;
        return err_set(err, "not valid JSON (at byte %zu of the line)", at);
    }
    size_t at = (size_t)(end - line);
    while (at < len && (line[at] == ' ' || line[at] == '\t' || line[at] == '\r'))
        at++;
    if (at < len) {
        cJSON_Delete(root);
        return err_set(err, "characters after the JSON object (at byte %zu of the line)", at);
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return err_set(err, "not a JSON object");
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v) {
        cJSON_Delete(root);
        return err_set(err, "no \"%s\" key", key);
    }
    if (!cJSON_IsString(v) || !v->valuestring) {
        cJSON_Delete(root);
        return err_set(err, "\"%s\" is not a string", key);
    }
    doc->root = root;
    doc->text = v->valuestring;
    doc->text_len = strlen(v->valuestring);
    return 0;
}

void jsonl_doc_free(JsonlDoc *doc) {
    if (doc->root)
        cJSON_Delete((cJSON *)doc->root);
    memset(doc, 0, sizeof *doc);
}
