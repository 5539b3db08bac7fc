/*
 * A stand-in for librtlsdr, built by the tests (tests/fake_rtlsdr.py) so that the real
 * pyrtlsdr code runs without a dongle. SPDX-License-Identifier: GPL-3.0-or-later
 *
 * It exports every symbol pyrtlsdr's ctypes wrapper looks up at import, serves a real
 * UC8 recording through rtlsdr_read_async / rtlsdr_read_sync paced at the configured
 * sample rate, and writes every setting it receives to an in-memory log the test reads.
 * Control functions (fake_*) let a test unplug and replug the "dongle":
 *   - unplugged: the device count is 0, open fails, read_async returns 0 (as librtlsdr
 *     does when USB transfers fail with NO_DEVICE), read_sync and setters return -4.
 *   - replugged: a new open serves the recording from its start again.
 * The async reader reuses a single buffer and clears it after each callback, so a
 * consumer that keeps a reference instead of copying sees zeros, not the recording.
 * Built with -DFAKE_OMIT_DITHERING it lacks rtlsdr_set_dithering, like Debian's
 * librtlsdr 0.6, so the tests can check the loading error message.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIBUSB_ERROR_NO_DEVICE (-4)
#define TUNER_R820T 5
#define DEFAULT_BUF_LEN (16 * 32 * 512)

typedef void (*rtlsdr_read_async_cb_t)(unsigned char *buf, uint32_t len, void *ctx);

typedef struct rtlsdr_dev {
    int generation; /* plug generation at open: a replug makes old handles stale */
    uint32_t freq, rate;
    int ppm, manual, gain, agc, bias_tee, testmode, dithering;
    size_t pos; /* next byte of the recording to serve */
    volatile int cancel;
} rtlsdr_dev_t;

static const int r820t_gains[] = {0,   9,   14,  27,  37,  77,  87,  125, 144, 157,
                                  166, 197, 207, 229, 254, 280, 297, 328, 338, 364,
                                  372, 386, 402, 421, 434, 439, 445, 480, 496};
#define N_GAINS ((int)(sizeof r820t_gains / sizeof r820t_gains[0]))

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *iq;    /* the recording */
static size_t iq_len;
static double speed = 1.0;   /* pacing: 1 = real time, 0 = as fast as possible */
static int loop_file;        /* 1: repeat the recording; 0: silence after it */
static volatile int plugged = 1;
static volatile int generation = 1;
static volatile int open_error; /* nonzero: what rtlsdr_open returns (-3 access, -6 busy) */
static char serial[64] = "00000001";
static char *logbuf;
static size_t log_len, log_cap;
static unsigned long callbacks;

static void logf_(const char *fmt, ...) {
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    pthread_mutex_lock(&lock);
    if (log_len + (size_t)n + 2 > log_cap) {
        size_t cap = log_cap ? log_cap * 2 : 4096;
        while (cap < log_len + (size_t)n + 2)
            cap *= 2;
        char *p = realloc(logbuf, cap);
        if (!p) {
            pthread_mutex_unlock(&lock);
            return;
        }
        logbuf = p;
        log_cap = cap;
    }
    memcpy(logbuf + log_len, line, (size_t)n);
    log_len += (size_t)n;
    logbuf[log_len++] = '\n';
    logbuf[log_len] = 0;
    pthread_mutex_unlock(&lock);
}

static int alive(const rtlsdr_dev_t *dev) {
    return dev && plugged && dev->generation == generation;
}

/* ---- control functions for the tests ---- */

int fake_configure(const char *path, double pace, int loop) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = malloc(n > 0 ? (size_t)n : 1);
    if (!data || fread(data, 1, (size_t)n, f) != (size_t)n) {
        free(data);
        fclose(f);
        return -1;
    }
    fclose(f);
    free(iq);
    iq = data;
    iq_len = (size_t)n;
    speed = pace;
    loop_file = loop;
    callbacks = 0;
    return 0;
}

void fake_set_speed(double pace) { speed = pace; }
void fake_set_open_error(int code) { open_error = code; }
void fake_set_serial(const char *s) { snprintf(serial, sizeof serial, "%s", s); }

void fake_set_plugged(int on) {
    if (on && !plugged)
        generation++;
    plugged = on;
    logf_(on ? "plug" : "unplug");
}

const char *fake_log(void) { return logbuf ? logbuf : ""; }
void fake_log_clear(void) {
    pthread_mutex_lock(&lock);
    log_len = 0;
    if (logbuf)
        logbuf[0] = 0;
    pthread_mutex_unlock(&lock);
}
unsigned long fake_callbacks(void) { return callbacks; }

/* ---- device enumeration ---- */

uint32_t rtlsdr_get_device_count(void) { return plugged ? 1 : 0; }

const char *rtlsdr_get_device_name(uint32_t index) {
    return (plugged && index == 0) ? "Generic RTL2832U OEM (fake)" : "";
}

int rtlsdr_get_device_usb_strings(uint32_t index, char *manufact, char *product, char *ser) {
    if (!plugged || index != 0)
        return -1;
    if (manufact)
        strcpy(manufact, "Realtek");
    if (product)
        strcpy(product, "RTL2838UHIDIR");
    if (ser)
        strcpy(ser, serial);
    return 0;
}

int rtlsdr_get_index_by_serial(const char *s) {
    if (!s)
        return -1;
    if (!plugged)
        return -2; /* no devices */
    return strcmp(s, serial) == 0 ? 0 : -3;
}

int rtlsdr_open(rtlsdr_dev_t **out, uint32_t index) {
    logf_("open %u", index);
    if (open_error) {
        *out = NULL;
        return open_error;
    }
    if (!plugged || index != 0) {
        *out = NULL;
        return -1;
    }
    rtlsdr_dev_t *dev = calloc(1, sizeof *dev);
    if (!dev)
        return -1;
    dev->generation = generation;
    *out = dev;
    return 0;
}

int rtlsdr_close(rtlsdr_dev_t *dev) {
    logf_("close");
    free(dev);
    return 0;
}

/* ---- configuration: each setter logs "name value" ---- */

#define SETTER(name, field, fmt)                       \
    int rtlsdr_##name(rtlsdr_dev_t *dev, int value) {  \
        if (!alive(dev))                               \
            return LIBUSB_ERROR_NO_DEVICE;             \
        dev->field = value;                            \
        logf_(#name " " fmt, value);                   \
        return 0;                                      \
    }

SETTER(set_tuner_gain_mode, manual, "%d")
SETTER(set_agc_mode, agc, "%d")
SETTER(set_bias_tee, bias_tee, "%d")
SETTER(set_testmode, testmode, "%d")
#ifndef FAKE_OMIT_DITHERING
SETTER(set_dithering, dithering, "%d")
#endif

int rtlsdr_set_center_freq(rtlsdr_dev_t *dev, uint32_t freq) {
    if (!alive(dev))
        return LIBUSB_ERROR_NO_DEVICE;
    dev->freq = freq;
    logf_("set_center_freq %u", freq);
    return 0;
}
uint32_t rtlsdr_get_center_freq(rtlsdr_dev_t *dev) { return alive(dev) ? dev->freq : 0; }

int rtlsdr_set_freq_correction(rtlsdr_dev_t *dev, int ppm) {
    if (!alive(dev))
        return LIBUSB_ERROR_NO_DEVICE;
    if (dev->ppm == ppm)
        return -2; /* librtlsdr refuses a correction equal to the current one */
    dev->ppm = ppm;
    logf_("set_freq_correction %d", ppm);
    return 0;
}
int rtlsdr_get_freq_correction(rtlsdr_dev_t *dev) { return alive(dev) ? dev->ppm : 0; }

int rtlsdr_get_tuner_type(rtlsdr_dev_t *dev) { return alive(dev) ? TUNER_R820T : 0; }

int rtlsdr_set_tuner_gain(rtlsdr_dev_t *dev, int gain) {
    if (!alive(dev))
        return LIBUSB_ERROR_NO_DEVICE;
    dev->gain = gain;
    logf_("set_tuner_gain %d", gain);
    return 0;
}
int rtlsdr_get_tuner_gain(rtlsdr_dev_t *dev) { return alive(dev) ? dev->gain : 0; }

int rtlsdr_get_tuner_gains(rtlsdr_dev_t *dev, int *gains) {
    if (!alive(dev))
        return 0;
    if (gains)
        memcpy(gains, r820t_gains, sizeof r820t_gains);
    return N_GAINS;
}

int rtlsdr_set_sample_rate(rtlsdr_dev_t *dev, uint32_t rate) {
    if (!alive(dev))
        return LIBUSB_ERROR_NO_DEVICE;
    if (rate <= 225000 || rate > 3200000)
        return -22;
    dev->rate = rate;
    logf_("set_sample_rate %u", rate);
    return 0;
}
uint32_t rtlsdr_get_sample_rate(rtlsdr_dev_t *dev) { return alive(dev) ? dev->rate : 0; }

int rtlsdr_set_direct_sampling(rtlsdr_dev_t *dev, int on) { return alive(dev) ? 0 * on : -4; }
int rtlsdr_set_xtal_freq(rtlsdr_dev_t *dev, uint32_t a, uint32_t b) {
    (void)a, (void)b;
    return alive(dev) ? 0 : -4;
}
int rtlsdr_get_xtal_freq(rtlsdr_dev_t *dev, uint32_t *a, uint32_t *b) {
    if (a)
        *a = 28800000;
    if (b)
        *b = 28800000;
    return alive(dev) ? 0 : -4;
}
uint32_t rtlsdr_set_and_get_tuner_bandwidth(rtlsdr_dev_t *dev, uint32_t bw, uint32_t *applied,
                                            int apply) {
    (void)apply;
    if (applied)
        *applied = bw;
    return alive(dev) ? 0 : (uint32_t)-4;
}
uint32_t rtlsdr_set_tuner_bandwidth(rtlsdr_dev_t *dev, uint32_t bw) {
    (void)bw;
    return alive(dev) ? 0 : (uint32_t)-4;
}

/* GPIO: accepted and ignored (pyrtlsdr binds them; the agent never calls them) */
int rtlsdr_set_gpio_output(rtlsdr_dev_t *dev, uint8_t g) { return alive(dev) ? 0 * g : -4; }
int rtlsdr_set_gpio_input(rtlsdr_dev_t *dev, uint8_t g) { return alive(dev) ? 0 * g : -4; }
int rtlsdr_set_gpio_bit(rtlsdr_dev_t *dev, uint8_t g, int v) { return alive(dev) ? 0 * (g + v) : -4; }
int rtlsdr_get_gpio_bit(rtlsdr_dev_t *dev, uint8_t g, int *v) {
    (void)g;
    if (v)
        *v = 0;
    return alive(dev) ? 0 : -4;
}
int rtlsdr_set_gpio_byte(rtlsdr_dev_t *dev, int v) { return alive(dev) ? 0 * v : -4; }
int rtlsdr_get_gpio_byte(rtlsdr_dev_t *dev, int *v) {
    if (v)
        *v = 0;
    return alive(dev) ? 0 : -4;
}
int rtlsdr_set_gpio_status(rtlsdr_dev_t *dev, int *v) {
    if (v)
        *v = 0;
    return alive(dev) ? 0 : -4;
}

/* ---- streaming ---- */

int rtlsdr_reset_buffer(rtlsdr_dev_t *dev) {
    if (!alive(dev))
        return LIBUSB_ERROR_NO_DEVICE;
    logf_("reset_buffer");
    return 0;
}

/* Fill buf with the next len bytes: the recording, then silence (or the recording again). */
static void fill(rtlsdr_dev_t *dev, unsigned char *buf, size_t len) {
    size_t k = 0;
    while (k < len) {
        if (dev->pos >= iq_len && loop_file && iq_len)
            dev->pos = 0;
        if (dev->pos < iq_len) {
            size_t n = iq_len - dev->pos;
            if (n > len - k)
                n = len - k;
            memcpy(buf + k, iq + dev->pos, n);
            dev->pos += n;
            k += n;
        } else {
            for (; k < len; k += 2) { /* mid-scale: no signal */
                buf[k] = 127;
                if (k + 1 < len)
                    buf[k + 1] = 128;
            }
        }
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Sleep until `bytes` bytes would have arrived from a dongle at the set rate. */
static void pace(const rtlsdr_dev_t *dev, double t0, uint64_t bytes) {
    if (speed <= 0 || dev->rate == 0)
        return;
    double due = t0 + (double)bytes / 2.0 / dev->rate / speed;
    double wait = due - now_s();
    if (wait > 0) {
        struct timespec ts = {(time_t)wait, (long)((wait - (time_t)wait) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

int rtlsdr_read_sync(rtlsdr_dev_t *dev, void *buf, int len, int *n_read) {
    if (!alive(dev)) {
        if (n_read)
            *n_read = 0;
        return LIBUSB_ERROR_NO_DEVICE;
    }
    fill(dev, buf, (size_t)len);
    if (n_read)
        *n_read = len;
    return 0;
}

int rtlsdr_read_async(rtlsdr_dev_t *dev, rtlsdr_read_async_cb_t cb, void *ctx, uint32_t buf_num,
                      uint32_t buf_len) {
    if (!alive(dev))
        return LIBUSB_ERROR_NO_DEVICE;
    if (buf_len == 0)
        buf_len = DEFAULT_BUF_LEN;
    logf_("read_async %u %u", buf_num, buf_len);
    unsigned char *buf = malloc(buf_len);
    if (!buf)
        return -11;
    dev->cancel = 0;
    double t0 = now_s();
    uint64_t sent = 0;
    while (!dev->cancel && alive(dev)) {
        fill(dev, buf, buf_len);
        sent += buf_len;
        pace(dev, t0, sent);
        if (dev->cancel || !alive(dev))
            break;
        cb(buf, buf_len, ctx);
        __atomic_add_fetch(&callbacks, 1, __ATOMIC_RELAXED);
        memset(buf, 0, buf_len); /* the buffer is reused: a consumer must copy it */
    }
    free(buf);
    logf_(dev->cancel ? "read_async_end cancel" : "read_async_end lost");
    return 0;
}

int rtlsdr_wait_async(rtlsdr_dev_t *dev, rtlsdr_read_async_cb_t cb, void *ctx) {
    return rtlsdr_read_async(dev, cb, ctx, 0, 0);
}

int rtlsdr_cancel_async(rtlsdr_dev_t *dev) {
    if (!dev)
        return -1;
    dev->cancel = 1;
    logf_("cancel_async");
    return 0;
}
