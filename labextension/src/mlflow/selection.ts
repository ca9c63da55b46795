/**
 * The experiment open in the sidebar, for the other InfinStor plugins of this package (the job
 * dialog picks it when the notebook has no runs yet). The MLflow browser model sets it; the
 * sidebar's own state stays there.
 */
import { IExperiment } from './types';

let opened: IExperiment | null = null;

/** The experiment whose runs the sidebar shows, or null. */
export function openedExperiment(): IExperiment | null {
  return opened;
}

/** Called by the sidebar when it opens an experiment (null: back to the list). */
export function setOpenedExperiment(experiment: IExperiment | null): void {
  opened = experiment;
}
