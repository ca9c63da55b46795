import './base.css';
import './jobs.css';
import './mlflow.css';
import './signin.css';
