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
  pending ??= acquire().then((g) => (current = g)).finally(() => (pending = null));
  return pending;
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
  const gpu: Gpu = {
    device,
    description: adapter.info?.description || adapter.info?.vendor || "unknown adapter",
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
