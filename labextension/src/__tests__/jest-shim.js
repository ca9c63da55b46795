// Only applies to the jsdom environment; node-environment suites skip it.
// Browser APIs that jsdom lacks but Lumino / JupyterLab touch at import time.
if (
  typeof globalThis.MouseEvent !== 'undefined' &&
  typeof globalThis.DragEvent === 'undefined'
) {
  globalThis.DragEvent = class DragEvent extends MouseEvent {
    constructor(type, init = {}) {
      super(type, init);
      this.dataTransfer = init.dataTransfer ?? null;
    }
  };
}

if (typeof window !== 'undefined' && typeof window.matchMedia !== 'function') {
  window.matchMedia = query => ({
    matches: false,
    media: query,
    onchange: null,
    addListener: () => undefined,
    removeListener: () => undefined,
    addEventListener: () => undefined,
    removeEventListener: () => undefined,
    dispatchEvent: () => false
  });
}

for (const name of ['ResizeObserver', 'IntersectionObserver']) {
  if (typeof globalThis[name] === 'undefined') {
    globalThis[name] = class {
      observe() {}
      unobserve() {}
      disconnect() {}
      takeRecords() {
        return [];
      }
    };
  }
}
