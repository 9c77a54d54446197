/**
 * The WebGPU adapter and device: acquired once, with the adapter's own limits,
 * and watched for loss so that no read-back waits forever on a dead device.
 *
 * @module
 */

/** Thrown when WebGPU is missing, the device is lost, or a kernel fails validation. */
export class GpuError extends Error {
  /**
   * Creates the error.
   *
   * @param message What went wrong and, where known, how to fix it.
   */
  constructor(message: string) {
    super(message);
    this.name = "GpuError";
  }
}

/** The device the engine runs on, with the facts the kernels need about it. */
export interface Gpu {
  /** The WebGPU device. */
  device: GPUDevice;
  /** The adapter's description, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)". */
  description: string;
  /**
   * The wgpu backend behind the adapter ("vulkan", "gl", "metal", "dx12"), from
   * `DENO_WEBGPU_BACKEND` when set, else as wgpu picks it (see {@link guessBackend});
   * backends differ in what they compute right, so every report names it.
   */
  backend: string;
  /** Adapter and backend in one line, for logs and reports. */
  label: string;
  /** Limits granted to the device (the adapter's own, not the defaults). */
  limits: GPUSupportedLimits;
  /** Whether GPU timestamp queries can be used for profiling. */
  timestamps: boolean;
  /** Set when the device is lost; every later call throws this. */
  lost: GpuError | null;
}

let current: Gpu | null = null;
let pending: Promise<Gpu> | null = null;

const NO_ADAPTER =
  "WebGPU: no GPU adapter was found (navigator.gpu.requestAdapter() returned null). " +
  "Without a GPU, install a software implementation: on Debian/Ubuntu `apt-get install " +
  "libgl1-mesa-dri` (Mesa llvmpipe, OpenGL) or `apt-get install mesa-vulkan-drivers` (lavapipe).";

/**
 * Acquires the GPU device once, requesting every limit the adapter offers.
 *
 * @example
 * ```ts
 * import { initGpu } from "./device.ts";
 * const gpu = await initGpu();
 * console.log(gpu.description);
 * ```
 */
export function initGpu(): Promise<Gpu> {
  if (current && !current.lost) return Promise.resolve(current);
  pending ??= acquire().then(async (g) => {
    const replaced = current !== null;
    current = g;
    // Caches tied to the lost device (pipelines, buffer pool, textures) start afresh.
    if (replaced) { for (const f of newDeviceHooks) f(); }
    if (selfCheck && !skipSelfCheck()) {
      const err = await selfCheck().catch((e) => (e instanceof Error ? e.message : String(e)));
      if (err) {
        g.lost = new GpuError(
          `WebGPU self-check failed on ${g.label}: ${err}. This adapter computes wrong results, ` +
            "so frost will not run on it. Try another backend (DENO_WEBGPU_BACKEND=vulkan or " +
            "=gl) or driver; FROST_SKIP_SELF_CHECK=1 skips the check at your own risk.",
        );
        throw g.lost;
      }
    }
    return g;
  }).finally(() => (pending = null));
  return pending;
}

const newDeviceHooks: (() => void)[] = [];

/**
 * Registers a function that drops what a module keeps for the device (pipelines,
 * pooled buffers, textures): called when {@link initGpu} replaces a lost device.
 */
export function onNewDevice(f: () => void): void {
  newDeviceHooks.push(f);
}

let selfCheck: (() => Promise<string | null>) | null = null;

/**
 * Sets the check that {@link initGpu} runs on every new device: it returns what
 * came out wrong, or null. engine/self_check.ts installs it.
 */
export function setSelfCheck(f: () => Promise<string | null>): void {
  selfCheck = f;
}

/**
 * An environment variable, or undefined where it is unset or not readable:
 * never a permission prompt (a library user may not have granted --allow-env).
 */
export function readEnv(name: string): string | undefined {
  try {
    if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
      return undefined;
    }
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

const skipSelfCheck = () => readEnv("FROST_SKIP_SELF_CHECK") === "1";

/**
 * The wgpu backend that Deno's WebGPU uses: `DENO_WEBGPU_BACKEND` when set
 * (wgpu reads the same variable), else the platform's first choice: Metal on
 * macOS, DX12 on Windows, and elsewhere Vulkan when a Vulkan driver is
 * installed (wgpu prefers it), OpenGL otherwise. WebGPU itself does not say
 * which backend serves an adapter, so without the variable this is a guess,
 * marked "(auto)".
 */
export function guessBackend(): string {
  const env = readEnv("DENO_WEBGPU_BACKEND");
  if (env) return env.toLowerCase();
  if (Deno.build.os === "darwin") return "metal (auto)";
  if (Deno.build.os === "windows") return "dx12 (auto)";
  const icdDirs = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d"];
  try {
    for (const dir of icdDirs) {
      // Never prompt for a permission only to name the backend.
      if (Deno.permissions.querySync({ name: "read", path: dir }).state !== "granted") {
        return "unknown";
      }
      try {
        for (const e of Deno.readDirSync(dir)) if (e.name.endsWith(".json")) return "vulkan (auto)";
      } catch (e) {
        if (e instanceof Deno.errors.PermissionDenied) throw e;
      }
    }
    return "gl (auto)";
  } catch {
    return "unknown";
  }
}

/**
 * Mesa prints "XDG_RUNTIME_DIR is invalid" on every start when the variable is
 * unset (containers, CI). Point it at a private directory if we may.
 */
function quietMesa(): void {
  try {
    if (Deno.build.os !== "linux" || Deno.env.get("XDG_RUNTIME_DIR")) return;
    // (Not Deno.uid(): that needs --allow-sys, which the tasks do not grant.)
    const dir = `/tmp/frost-runtime-${Deno.env.get("USER") ?? Deno.env.get("LOGNAME") ?? "user"}`;
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    Deno.env.set("XDG_RUNTIME_DIR", dir);
  } catch {
    // Without env/write permission the message is only noise; carry on.
  }
}

async function acquire(): Promise<Gpu> {
  quietMesa();
  if (typeof navigator === "undefined" || !("gpu" in navigator)) {
    throw new GpuError("WebGPU: navigator.gpu is not available in this runtime. " + NO_ADAPTER);
  }
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new GpuError(NO_ADAPTER);
  const requiredLimits: Record<string, number> = {};
  // Ask for the adapter's real limits: the defaults cap storage bindings at 128 MiB
  // and workgroup storage at 16 KiB even where the hardware offers more.
  for (const key in adapter.limits) {
    const v = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof v === "number") requiredLimits[key] = v;
  }
  const features: GPUFeatureName[] = [];
  const timestamps = adapter.features.has("timestamp-query");
  if (timestamps) features.push("timestamp-query");
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures: features });
  const description = adapter.info?.description || adapter.info?.vendor || "unknown adapter";
  const backend = guessBackend();
  const gpu: Gpu = {
    device,
    description,
    backend,
    label: `${description}, wgpu ${backend} backend`,
    limits: device.limits,
    timestamps,
    lost: null,
  };
  device.lost.then((info) => {
    if (info.reason === "destroyed" && gpu.lost) return;
    gpu.lost = new GpuError(
      `WebGPU device lost (${info.reason}): ${info.message}. Tensors on it are gone; ` +
        "call initGpu() for a new device and reload them (e.g. from a checkpoint)",
    );
  });
  device.addEventListener("uncapturederror", (ev) => {
    const e = (ev as GPUUncapturedErrorEvent).error;
    uncaptured.push(e.message);
  });
  return gpu;
}

const uncaptured: string[] = [];

/** Errors WebGPU raised outside any error scope, drained by the dispatcher. */
export function takeUncapturedErrors(): string[] {
  return uncaptured.splice(0);
}

/**
 * The device, which must already be initialised by {@link initGpu}. Tensor
 * operations are synchronous, so they need the device in hand.
 *
 * @example
 * ```ts
 * import { gpu, initGpu } from "./device.ts";
 * await initGpu();
 * console.log(gpu().limits.maxStorageBufferBindingSize);
 * ```
 */
export function gpu(): Gpu {
  if (!current) {
    throw new GpuError(
      "WebGPU device not initialised: `await initGpu()` first (mod.ts does this on import).",
    );
  }
  if (current.lost) throw current.lost;
  return current;
}
