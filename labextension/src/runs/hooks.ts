import React from 'react';

/**
 * Whether an element has come into view (once true, stays true): charts load their data
 * only when scrolled to. True at once where IntersectionObserver is missing.
 */
export function useInView<T extends HTMLElement>(): [React.RefObject<T>, boolean] {
  const ref = React.useRef<T>(null);
  const [seen, setSeen] = React.useState(typeof IntersectionObserver === 'undefined');
  React.useEffect(() => {
    const el = ref.current;
    if (seen || !el) {
      return;
    }
    const observer = new IntersectionObserver(entries => {
      if (entries.some(e => e.isIntersecting)) {
        setSeen(true);
        observer.disconnect();
      }
    }, { rootMargin: '200px' });
    observer.observe(el);
    return () => observer.disconnect();
  }, [seen]);
  return [ref, seen];
}

/**
 * Run `tasks` with at most `limit` at a time (history requests of a chart grid).
 */
export async function withLimit<T>(tasks: Array<() => Promise<T>>, limit: number): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      out[i] = await tasks[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return out;
}
