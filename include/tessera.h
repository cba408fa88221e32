/*
 * tessera.h — Tessera's public C API.
 *
 * Tessera generates images and videos from text with diffusion transformers; every
 * attention call of the DiT is planned by a schedule. The pipeline API (open a
 * model directory, set parameters, generate with a progress callback, write
 * outputs) lands with the text-to-video CLI; for now the library exposes its
 * version. Internal modules (src/, dit/, vae/, samplers/, attention/) are not
 * part of the stable API.
 */
#ifndef TESSERA_H
#define TESSERA_H

#ifdef __cplusplus
extern "C" {
#endif

#define TESSERA_VERSION_MAJOR 0
#define TESSERA_VERSION_MINOR 1
#define TESSERA_VERSION_PATCH 0

/* "0.1.0" */
const char *tessera_version(void);

#ifdef __cplusplus
}
#endif

#endif
