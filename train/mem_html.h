/* mem_html.h: the memory page: one self-contained HTML file (works offline: no network, no
 * CDN; the page's script, styles and data are all inside it) that shows a config's memory.
 *
 * What it holds (written as one JSON object inside the page, drawn by train/mem_page.html):
 *   - the arena over one planned training step (gpt_build, the evaluation forward, the
 *     micro-steps' forwards and backwards, the optimizer update): every tensor as a block at
 *     its real offset over its lifetime (alloc event to free event), with its name, category,
 *     dtype and shape, the step's markers, and the bytes per category after every event;
 *   - the modes side by side: every attention kind the device can plan x every recompute
 *     mode, each with its peak per category, high-water mark, extra forward FLOPs and the
 *     largest batch_size whose arena fits 12 GiB, and the card's memory minus its context;
 *   - the loss head's chunk: 2-4 chunk sizes (model/loss_chunk.h) with their workspace, the
 *     wte traffic per micro-step and the planned peak and high-water mark;
 *   - the card: its memory split into context + libraries, arena reservation and free. From a
 *     plan, context + libraries is the GPU table's figure for the `gpu` card (labelled an
 *     estimate, with its source); from a GPU train run, the measured reconciliation;
 *   - from a train run: plan vs measured peaks per category;
 *   - nanoGPT's memory for the same config (scripts/nanogpt_memory.py's JSON), when present.
 *
 * The template (train/mem_page.html) is built into the binary (mem_html.c, .incbin). Not
 * here: the arena's text, JSON, CSV and trace reports (alloc/report.c). */
#ifndef ARENAGPT_MEM_HTML_H
#define ARENAGPT_MEM_HTML_H

#include "../model/device.h"
#include "../model/gpt.h"
#include "config.h"

/* What a train run measured; NULL members are left out of the page. */
typedef struct MemHtmlMeasured {
    const Arena *plan;   /* the run's plan arena */
    const Arena *arena;  /* the run's arena after training */
    const DeviceMem *dm; /* the GPU reconciliation (DEVICE_MEM_NOW taken); NULL on the CPU */
} MemHtmlMeasured;

/* Writes the page for cfg on dev to path. measured is NULL for a plan (`arenagpt mem`).
 * The nanoGPT figures come from cfg->nanogpt_json, or by default from
 * <config dir>/nanogpt/<config name>.json when it exists and describes the same model and
 * batch. Returns -1 with err (naming the file) when a file cannot be written or read, or when
 * the nanoGPT file named explicitly is not valid or is for another config. */
int mem_html_write(const char *path, const TrainConfig *cfg, GptDevice dev,
                   const MemHtmlMeasured *measured, Err *err);

/* The default nanoGPT JSON for a config file ("configs/small_4070.conf" ->
 * "configs/nanogpt/small_4070.json"); "" when no config file was given. */
void mem_html_nanogpt_default(const char *config_file, char *buf, size_t len);

#endif
