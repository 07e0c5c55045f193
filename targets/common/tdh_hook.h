/* Force-included into the generated model sources: declares the per-layer
 * hook that TD_LAYER_DONE(i, p, n) expands to in firmware builds. */
#ifndef TDH_HOOK_H
#define TDH_HOOK_H

void td_layer_done(int index, const void *data, unsigned long bytes);

#endif
