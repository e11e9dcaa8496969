/* json_mini.c: see json_mini.h. Recursive descent; strings keep \u escapes below 0x80 only
 * (enough for the project's reports, which are ASCII). */
#include "json_mini.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s;
    size_t pos;
    char *err;
    size_t err_len;
    int failed;
} Parser;

static void fail_at(Parser *p, const char *what) {
    if (!p->failed && p->err)
        snprintf(p->err, p->err_len, "JSON error at byte %zu: %s", p->pos, what);
    p->failed = 1;
}

static void skip_ws(Parser *p) {
    while (p->s[p->pos] == ' ' || p->s[p->pos] == '\n' || p->s[p->pos] == '\t' ||
           p->s[p->pos] == '\r')
        p->pos++;
}

static Json *node(JsonType t) {
    Json *j = calloc(1, sizeof *j);
    if (j)
        j->type = t;
    return j;
}

static void push(Json *parent, Json *child) {
    parent->items = realloc(parent->items, (parent->n_items + 1) * sizeof *parent->items);
    parent->items[parent->n_items++] = child;
}

static char *parse_string_raw(Parser *p) {
    if (p->s[p->pos] != '"') {
        fail_at(p, "expected a string");
        return NULL;
    }
    p->pos++;
    size_t cap = 16, n = 0;
    char *out = malloc(cap);
    while (!p->failed) {
        char c = p->s[p->pos];
        if (c == 0) {
            fail_at(p, "unterminated string");
            break;
        }
        p->pos++;
        if (c == '"')
            break;
        if ((unsigned char)c < 0x20) {
            fail_at(p, "control character in string");
            break;
        }
        if (c == '\\') {
            char e = p->s[p->pos++];
            switch (e) {
            case '"':
            case '\\':
            case '/':
                c = e;
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            case 'u': {
                unsigned v = 0;
                for (int i = 0; i < 4; i++) {
                    char h = p->s[p->pos++];
                    if (!isxdigit((unsigned char)h)) {
                        fail_at(p, "bad \\u escape");
                        break;
                    }
                    v = v * 16 +
                        (unsigned)(isdigit((unsigned char)h) ? h - '0' : (tolower(h) - 'a' + 10));
                }
                c = v < 0x80 ? (char)v : '?';
                break;
            }
            default:
                fail_at(p, "bad escape");
            }
        }
        if (n + 2 > cap)
            out = realloc(out, cap *= 2);
        out[n++] = c;
    }
    out[n] = 0;
    if (p->failed) {
        free(out);
        return NULL;
    }
    return out;
}

static Json *parse_value(Parser *p, int depth);

static Json *parse_container(Parser *p, int depth, int is_object) {
    Json *j = node(is_object ? JSON_OBJECT : JSON_ARRAY);
    p->pos++;
    skip_ws(p);
    char close = is_object ? '}' : ']';
    if (p->s[p->pos] == close) {
        p->pos++;
        return j;
    }
    while (!p->failed) {
        skip_ws(p);
        char *key = NULL;
        if (is_object) {
            key = parse_string_raw(p);
            if (!key)
                break;
            skip_ws(p);
            if (p->s[p->pos] != ':') {
                free(key);
                fail_at(p, "expected ':'");
                break;
            }
            p->pos++;
        }
        Json *v = parse_value(p, depth + 1);
        if (!v) {
            free(key);
            break;
        }
        v->key = key;
        push(j, v);
        skip_ws(p);
        if (p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->s[p->pos] == close) {
            p->pos++;
            return j;
        }
        fail_at(p, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    json_free(j);
    return NULL;
}

static Json *parse_value(Parser *p, int depth) {
    if (depth > 64) {
        fail_at(p, "nesting too deep");
        return NULL;
    }
    skip_ws(p);
    char c = p->s[p->pos];
    if (c == '{' || c == '[')
        return parse_container(p, depth, c == '{');
    if (c == '"') {
        char *s = parse_string_raw(p);
        if (!s)
            return NULL;
        Json *j = node(JSON_STRING);
        j->string = s;
        return j;
    }
    if (strncmp(p->s + p->pos, "true", 4) == 0 || strncmp(p->s + p->pos, "false", 5) == 0) {
        Json *j = node(JSON_BOOL);
        j->number = c == 't';
        p->pos += c == 't' ? 4 : 5;
        return j;
    }
    if (strncmp(p->s + p->pos, "null", 4) == 0) {
        p->pos += 4;
        return node(JSON_NULL);
    }
    if (c == '-' || isdigit((unsigned char)c)) {
        /* strict JSON number grammar */
        size_t start = p->pos;
        if (p->s[p->pos] == '-')
            p->pos++;
        if (p->s[p->pos] == '0')
            p->pos++;
        else if (isdigit((unsigned char)p->s[p->pos]))
            while (isdigit((unsigned char)p->s[p->pos]))
                p->pos++;
        else {
            fail_at(p, "bad number");
            return NULL;
        }
        if (p->s[p->pos] == '.') {
            p->pos++;
            if (!isdigit((unsigned char)p->s[p->pos])) {
                fail_at(p, "bad fraction");
                return NULL;
            }
            while (isdigit((unsigned char)p->s[p->pos]))
                p->pos++;
        }
        if (p->s[p->pos] == 'e' || p->s[p->pos] == 'E') {
            p->pos++;
            if (p->s[p->pos] == '+' || p->s[p->pos] == '-')
                p->pos++;
            if (!isdigit((unsigned char)p->s[p->pos])) {
                fail_at(p, "bad exponent");
                return NULL;
            }
            while (isdigit((unsigned char)p->s[p->pos]))
                p->pos++;
        }
        Json *j = node(JSON_NUMBER);
        j->number = strtod(p->s + start, NULL);
        return j;
    }
    fail_at(p, "unexpected character");
    return NULL;
}

Json *json_parse(const char *text, char *err, size_t err_len) {
    Parser p = {text, 0, err, err_len, 0};
    Json *j = parse_value(&p, 0);
    if (!j)
        return NULL;
    skip_ws(&p);
    if (p.s[p.pos] != 0) {
        fail_at(&p, "trailing characters");
        json_free(j);
        return NULL;
    }
    return j;
}

Json *json_parse_file(const char *path, char *err, size_t err_len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err)
            snprintf(err, err_len, "cannot open %s", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = 0;
    Json *j = json_parse(buf, err, err_len);
    free(buf);
    return j;
}

const Json *json_get(const Json *root, const char *path) {
    const Json *cur = root;
    char part[256];
    while (cur && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof part)
            return NULL;
        memcpy(part, path, n);
        part[n] = 0;
        path += n + (path[n] == '.');
        const Json *next = NULL;
        if (cur->type == JSON_OBJECT) {
            for (size_t i = 0; i < cur->n_items; i++)
                if (strcmp(cur->items[i]->key, part) == 0)
                    next = cur->items[i];
        } else if (cur->type == JSON_ARRAY) {
            char *end;
            long idx = strtol(part, &end, 10);
            if (*end == 0 && idx >= 0 && (size_t)idx < cur->n_items)
                next = cur->items[idx];
        }
        cur = next;
    }
    return cur;
}

void json_free(Json *j) {
    if (!j)
        return;
    for (size_t i = 0; i < j->n_items; i++)
        json_free(j->items[i]);
    free(j->items);
    free(j->string);
    free(j->key);
    free(j);
}
