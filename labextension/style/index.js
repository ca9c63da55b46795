import './base.css';
import './jobs.css';
import './compute.css';
import './mlflow.css';
import './signin.css';
import './runs.css';
